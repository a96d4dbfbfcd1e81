//! The KPL's connection settings (region, endpoints, TLS, proxy, connect timeout) applied to aws-config
//! loaders, and the list of a properties file's settings that no part of the library applies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{ConfigLoader, Region};
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use kpl_core::LoadedProperties;

/// The KPL's default `KinesisPort`, `CloudwatchPort` and `ProxyPort` (`KinesisProducerConfiguration`), used
/// when neither the endpoint nor the port setting names one.
const KPL_DEFAULT_PORT: u16 = 443;
/// The marker of a PEM certificate.
const PEM_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

/// A KPL connection setting that cannot be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionSettingsError {
    /// A value that does not parse, or settings that contradict each other.
    #[error("{key} = {value:?}: {reason}")]
    InvalidValue {
        /// The KPL key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `CaCertFile` or `CaCertPath` names a file or directory that cannot be read.
    #[error("{key} = {path:?}: {source}")]
    ReadCertificates {
        /// The KPL key.
        key: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The SDK's HTTP client refused the proxy or TLS configuration.
    #[error("the HTTP client cannot be built: {0}")]
    HttpClient(String),
}

fn invalid(key: &'static str, value: &str, reason: impl Into<String>) -> ConnectionSettingsError {
    ConnectionSettingsError::InvalidValue { key, value: value.to_owned(), reason: reason.into() }
}

/// Applies a KPL properties file's Kinesis connection settings to `loader`, the way the KPL applies them to
/// its HTTP client. You choose the loader, and with it the behavior version and credentials, e.g.
/// `aws_config::defaults(BehaviorVersion::latest())`; then `AwsBackend::from_sdk_config(&loader.load().await)`.
///
/// | KPL key | applied as |
/// |---|---|
/// | `Region` | `loader.region(..)` |
/// | `KinesisEndpoint`, `KinesisPort` | `loader.endpoint_url(..)`: `https://{KinesisEndpoint}:{KinesisPort}` (the KPL's form, port 443 by default). A URL with a scheme (`http://127.0.0.1:4567`) is also accepted (ours, for local servers); `KinesisPort` is added when it names no port |
/// | `ProxyHost`, `ProxyPort`, `ProxyUserName`, `ProxyPassword` | an HTTP proxy for every request (port 443 by default, as in the KPL), with basic authentication |
/// | `CaCertFile`, `CaCertPath` | the trusted roots: the PEM certificates of that file, or of every file in that directory, *instead of* the system's (as the KPL's `CAINFO`/`CAPATH`) |
/// | `VerifyCertificate` | `true` is the only behaviour: `false` is listed by [`unapplied_settings`](crate::unapplied_settings) |
/// | `ConnectTimeout` | the SDK's connect timeout, milliseconds (the SDK's own default, 3.1 s, when absent) |
///
/// Keys the file does not set leave the loader's values alone.
///
/// # Errors
///
/// [`ConnectionSettingsError`]: a value that does not parse (a port outside 1..=65535, a non-numeric
/// timeout, a password without a user name, a `KinesisEndpoint` whose port contradicts `KinesisPort`), or
/// certificates that cannot be read.
#[cfg(feature = "aws")]
pub fn kinesis_config_loader(
    loader: ConfigLoader,
    loaded: &LoadedProperties,
) -> Result<ConfigLoader, ConnectionSettingsError> {
    service_loader(loader, loaded, "KinesisEndpoint", "KinesisPort")
}

/// As [`kinesis_config_loader`], for the CloudWatch client the metrics uploader uses: `Region`, the proxy,
/// TLS and connect timeout settings are the same (one HTTP client configuration, as in the KPL), and the
/// endpoint is `CloudwatchEndpoint` / `CloudwatchPort`.
///
/// # Errors
///
/// As [`kinesis_config_loader`].
#[cfg(feature = "cloudwatch")]
pub fn cloudwatch_config_loader(
    loader: ConfigLoader,
    loaded: &LoadedProperties,
) -> Result<ConfigLoader, ConnectionSettingsError> {
    service_loader(loader, loaded, "CloudwatchEndpoint", "CloudwatchPort")
}

fn service_loader(
    mut loader: ConfigLoader,
    loaded: &LoadedProperties,
    endpoint_key: &'static str,
    port_key: &'static str,
) -> Result<ConfigLoader, ConnectionSettingsError> {
    let get = |key: &str| setting(loaded, key);
    if let Some(region) = get("Region") {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(endpoint) = get(endpoint_key) {
        let port = get(port_key).map(|port| parse_port(port_key, port)).transpose()?;
        loader = loader.endpoint_url(endpoint_url(endpoint_key, endpoint, port, "https")?);
    }
    if let Some(timeout) = get("ConnectTimeout") {
        let millis = timeout
            .parse::<u64>()
            .ok()
            .filter(|&millis| millis > 0)
            .ok_or_else(|| invalid("ConnectTimeout", timeout, "expected milliseconds, at least 1"))?;
        loader = loader
            .timeout_config(TimeoutConfig::builder().connect_timeout(Duration::from_millis(millis)).build());
    }
    let proxy = proxy_config(loaded)?;
    let trust_store = trust_store(loaded)?;
    if proxy.is_some() || trust_store.is_some() {
        loader = with_http_client(loader, proxy, trust_store)?;
    }
    Ok(loader)
}

fn parse_port(key: &'static str, port: &str) -> Result<u16, ConnectionSettingsError> {
    port.parse::<u16>()
        .ok()
        .filter(|&port| port > 0)
        .ok_or_else(|| invalid(key, port, "expected a port, 1 to 65535"))
}

/// `host`, `host:port` or `scheme://host[:port][/path]` as a URL, with `port` added when it names none.
fn endpoint_url(
    key: &'static str,
    endpoint: &str,
    port: Option<u16>,
    default_scheme: &str,
) -> Result<String, ConnectionSettingsError> {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or((default_scheme, endpoint));
    if !matches!(scheme, "http" | "https") {
        return Err(invalid(key, endpoint, "the scheme must be http or https"));
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |slash| rest.split_at(slash));
    if authority.is_empty() {
        return Err(invalid(key, endpoint, "no host"));
    }
    // The port follows the last `:`, unless that is inside an IPv6 literal's brackets.
    let written_port = authority
        .rsplit_once(':')
        .filter(|(_, after)| !after.contains(']'))
        .map(|(_, port)| parse_port(key, port))
        .transpose()?;
    let port = match (written_port, port) {
        (Some(written), Some(port)) if written != port => {
            return Err(invalid(
                key,
                endpoint,
                format!("names port {written}, but the port setting is {port}"),
            ));
        }
        (Some(_), _) => return Ok(format!("{scheme}://{authority}{path}")),
        (None, Some(port)) => port,
        // The KPL's default port for each of its endpoints, rather than the scheme's.
        (None, None) => KPL_DEFAULT_PORT,
    };
    Ok(format!("{scheme}://{authority}:{port}{path}"))
}

/// A setting's value, unless it is absent or empty.
fn setting<'a>(loaded: &'a LoadedProperties, key: &str) -> Option<&'a str> {
    loaded.other_settings.get(key).map(String::as_str).filter(|value| !value.is_empty())
}

fn proxy_config(loaded: &LoadedProperties) -> Result<Option<ProxyConfig>, ConnectionSettingsError> {
    let get = |key: &str| setting(loaded, key);
    let Some(host) = get("ProxyHost") else {
        if get("ProxyUserName").is_some() || get("ProxyPassword").is_some() {
            return Err(invalid("ProxyHost", "", "a proxy user name or password is set without ProxyHost"));
        }
        return Ok(None);
    };
    let port = get("ProxyPort").map(|port| parse_port("ProxyPort", port)).transpose()?;
    let url = endpoint_url("ProxyHost", host, port, "http")?;
    let proxy =
        ProxyConfig::all(url.as_str()).map_err(|error| invalid("ProxyHost", host, error.to_string()))?;
    Ok(Some(match (get("ProxyUserName"), get("ProxyPassword")) {
        (Some(user), password) => proxy.with_basic_auth(user, password.unwrap_or_default()),
        (None, Some(_)) => {
            return Err(invalid("ProxyUserName", "", "ProxyPassword is set without a user name"));
        }
        (None, None) => proxy,
    }))
}

/// The roots of `CaCertFile` and `CaCertPath`, if either is set.
fn trust_store(loaded: &LoadedProperties) -> Result<Option<TrustStore>, ConnectionSettingsError> {
    let get = |key: &str| setting(loaded, key);
    let mut certificates = Vec::new();
    if let Some(file) = get("CaCertFile") {
        let pem = read_pem("CaCertFile", Path::new(file))?;
        if !contains_certificate(&pem) {
            return Err(invalid("CaCertFile", file, "the file holds no PEM certificate"));
        }
        certificates.push(pem);
    }
    if let Some(dir) = get("CaCertPath") {
        let read_error = |source| ConnectionSettingsError::ReadCertificates {
            key: "CaCertPath",
            path: PathBuf::from(dir),
            source,
        };
        let mut found = false;
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            // Such directories also hold CRLs and other files (`c_rehash`): only certificates are taken.
            if path.is_file() {
                let pem = read_pem("CaCertPath", &path)?;
                if contains_certificate(&pem) {
                    found = true;
                    certificates.push(pem);
                }
            }
        }
        if !found {
            return Err(invalid("CaCertPath", dir, "the directory holds no PEM certificate"));
        }
    }
    Ok((!certificates.is_empty())
        .then(|| certificates.into_iter().fold(TrustStore::empty(), TrustStore::with_pem_certificate)))
}

fn read_pem(key: &'static str, path: &Path) -> Result<Vec<u8>, ConnectionSettingsError> {
    std::fs::read(path).map_err(|source| ConnectionSettingsError::ReadCertificates {
        key,
        path: path.to_owned(),
        source,
    })
}

fn contains_certificate(pem: &[u8]) -> bool {
    pem.windows(PEM_CERTIFICATE.len()).any(|window| window == PEM_CERTIFICATE.as_bytes())
}

/// The SDK's HTTP client (hyper, rustls with aws-lc: aws-config's default) with the proxy and roots. Each
/// connector gets the SDK's connect and read timeouts and sleep, as the default client's do.
fn with_http_client(
    loader: ConfigLoader,
    proxy: Option<ProxyConfig>,
    trust_store: Option<TrustStore>,
) -> Result<ConfigLoader, ConnectionSettingsError> {
    let context = TlsContext::builder()
        .with_trust_store(trust_store.unwrap_or_default())
        .build()
        .map_err(|error| ConnectionSettingsError::HttpClient(error.to_string()))?;
    Ok(loader.http_client(aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, components| {
            let mut builder = Connector::builder();
            builder.set_connector_settings(settings.cloned());
            builder.set_sleep_impl(components.and_then(|components| components.sleep_impl()));
            builder.set_proxy_config(proxy.clone());
            builder
                .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
                .tls_context(context.clone())
                .build()
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_take_the_kpl_host_form_or_a_url() {
        let url = |endpoint, port| endpoint_url("KinesisEndpoint", endpoint, port, "https");
        assert_eq!(
            url("kinesis.eu-west-1.amazonaws.com", None).unwrap(),
            "https://kinesis.eu-west-1.amazonaws.com:443"
        );
        assert_eq!(url("http://proxy.corp", None).unwrap(), "http://proxy.corp:443");
        assert_eq!(url("localhost", Some(4567)).unwrap(), "https://localhost:4567");
        assert_eq!(url("http://127.0.0.1", Some(4567)).unwrap(), "http://127.0.0.1:4567");
        assert_eq!(url("http://127.0.0.1:4567/", Some(4567)).unwrap(), "http://127.0.0.1:4567/");
        assert_eq!(url("http://[::1]", Some(80)).unwrap(), "http://[::1]:80");
        assert_eq!(url("[::1]:8443", None).unwrap(), "https://[::1]:8443");
        assert!(url("http://127.0.0.1:4567", Some(443)).is_err());
        assert!(url("ftp://host", None).is_err());
        assert!(url("host:99999", None).is_err());
        assert!(url("http://", None).is_err());
    }

    fn loaded(text: &str) -> LoadedProperties {
        kpl_core::ProducerConfig::from_properties(text).unwrap()
    }

    #[test]
    fn certificates_come_from_a_file_or_every_certificate_of_a_directory() {
        let dir = std::env::temp_dir().join(format!("kpl-tokio-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certificate = dir.join("root.pem");
        std::fs::write(&certificate, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
            .unwrap();
        std::fs::write(dir.join("revoked.r0"), "-----BEGIN X509 CRL-----\n").unwrap();
        let file = loaded(&format!("CaCertFile = {}\n", certificate.display()));
        assert!(trust_store(&file).unwrap().is_some());
        let directory = loaded(&format!("CaCertPath = {}\n", dir.display()));
        assert!(trust_store(&directory).unwrap().is_some());
        let not_pem = loaded(&format!("CaCertFile = {}\n", dir.join("revoked.r0").display()));
        assert!(matches!(
            trust_store(&not_pem),
            Err(ConnectionSettingsError::InvalidValue { key: "CaCertFile", .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            trust_store(&file),
            Err(ConnectionSettingsError::ReadCertificates { key: "CaCertFile", .. })
        ));
        assert!(matches!(
            trust_store(&directory),
            Err(ConnectionSettingsError::ReadCertificates { key: "CaCertPath", .. })
        ));
        assert!(trust_store(&loaded("")).unwrap().is_none());
    }

    #[test]
    fn proxy_credentials_need_a_proxy_and_a_user_name() {
        assert!(proxy_config(&loaded("")).unwrap().is_none());
        assert!(proxy_config(&loaded("ProxyHost = proxy.corp\nProxyUserName = me\n")).unwrap().is_some());
        assert!(proxy_config(&loaded("ProxyHost = proxy.corp\nProxyPassword = secret\n")).is_err());
        assert!(proxy_config(&loaded("ProxyUserName = me\n")).is_err());
        assert!(proxy_config(&loaded("ProxyHost = proxy.corp\nProxyPort = 0\n")).is_err());
    }

    #[test]
    fn invalid_values_are_refused_by_key() {
        let refused =
            |text: &str| match kinesis_config_loader(aws_config::ConfigLoader::default(), &loaded(text)) {
                Err(ConnectionSettingsError::InvalidValue { key, .. }) => key,
                other => panic!("{text}: {:?}", other.map(|_| ())),
            };
        assert_eq!(refused("ConnectTimeout = 0\n"), "ConnectTimeout");
        assert_eq!(refused("ConnectTimeout = soon\n"), "ConnectTimeout");
        assert_eq!(refused("KinesisEndpoint = localhost\nKinesisPort = 70000\n"), "KinesisPort");
        assert_eq!(refused("KinesisEndpoint = localhost:4567\nKinesisPort = 4568\n"), "KinesisEndpoint");
    }
}
