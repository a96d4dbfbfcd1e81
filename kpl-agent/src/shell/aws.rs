//! The AWS clients from `agent.json`'s keys (Kinesis, CloudWatch, STS for an assumed role), and the
//! signals.

use std::path::PathBuf;
use std::time::Duration;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kinesis::config::{Credentials, SharedCredentialsProvider};
use kpl_tokio::{AwsBackend, CloudWatchUploader, MetricsConfig};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::config::AgentConfig;

/// Why the AWS client could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// No region anywhere.
    #[error("no AWS region: set kinesis.region in agent.json, AWS_REGION, or a profile's region")]
    NoRegion,
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// The session name of `assumeRoleARN`'s sessions, and their length: the agent's
/// (`AgentContext.java`, see `kinesis-agent.md` (a)).
const ROLE_SESSION_NAME: &str = "AWSKinesisAgent";
const ROLE_SESSION_LENGTH: Duration = Duration::from_secs(3600);

/// `endpoint` as a URL: a host name without scheme is taken as `https://`, as the agent's SDK does.
pub(crate) fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") { endpoint.to_owned() } else { format!("https://{endpoint}") }
}

/// The AWS SDK configuration every client of the agent shares: the SDK's default chain (region,
/// credentials), with `kinesis.region`, the static keys of `agent.json` when given, and
/// `assumeRoleARN` (with `assumeRoleExternalId`, through `sts.endpoint` when given) on top of those
/// credentials, renewed before they expire. Endpoints are per service (see [`aws_backend`]).
pub async fn sdk_config(config: &AgentConfig) -> Result<SdkConfig, SetupError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &config.kinesis_region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((id, secret)) = &config.static_credentials {
        loader = loader.credentials_provider(Credentials::new(id, secret, None, None, "agent.json"));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(SetupError::NoRegion);
    }
    let Some(role) = &config.assume_role else { return Ok(sdk) };
    let mut sts = sdk.clone().into_builder();
    if let Some(endpoint) = &config.sts_endpoint {
        sts.set_endpoint_url(Some(endpoint_url(endpoint)));
    }
    let mut provider = AssumeRoleProvider::builder(role.arn.clone())
        .session_name(ROLE_SESSION_NAME)
        .session_length(ROLE_SESSION_LENGTH)
        .configure(&sts.build());
    if let Some(id) = &role.external_id {
        provider = provider.external_id(id.clone());
    }
    let provider = provider.build().await;
    Ok(sdk.into_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build())
}

/// The producer's backend on `sdk` (see [`sdk_config`]), with `kinesis.endpoint` when given.
pub fn aws_backend(config: &AgentConfig, sdk: &SdkConfig) -> AwsBackend {
    let mut kinesis = aws_sdk_kinesis::config::Builder::from(sdk);
    if let Some(endpoint) = &config.kinesis_endpoint {
        kinesis.set_endpoint_url(Some(endpoint_url(endpoint)));
    }
    AwsBackend::from_conf(kinesis.build())
}

/// The uploader of the agent's metrics on `sdk`, with `cloudwatch.endpoint` and
/// `cloudwatch.namespace`; `None` with `cloudwatch.emitMetrics` false.
pub fn cloudwatch_uploader(config: &AgentConfig, sdk: &SdkConfig) -> Option<CloudWatchUploader> {
    let cloudwatch = &config.cloudwatch;
    if !cloudwatch.emit_metrics {
        return None;
    }
    let mut builder = sdk.clone().into_builder();
    if let Some(endpoint) = &cloudwatch.endpoint {
        builder.set_endpoint_url(Some(endpoint_url(endpoint)));
    }
    // The namespace was checked when the configuration was read (1 to 255 characters).
    let metrics = MetricsConfig::default().namespace(cloudwatch.namespace.clone()).ok()?;
    Some(CloudWatchUploader::from_sdk_config(&builder.build(), metrics))
}

/// A channel receiving one message per SIGTERM or SIGINT: the first asks for a graceful stop, the
/// second for an immediate one (see [`run`](super::run)).
pub fn stop_on_signals() -> Result<mpsc::Receiver<()>, SetupError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(SetupError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(SetupError::Signals)?;
    let (sender, receiver) = mpsc::channel(2);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            if sender.send(()).await.is_err() {
                return;
            }
        }
    });
    Ok(receiver)
}

/// A channel receiving the configuration read again from `config` (and its `agent.d/`) at each
/// SIGHUP, for [`RunControls::reload`](super::RunControls::reload). A configuration that does not load
/// is logged and the running one kept.
pub fn reload_on_sighup(config: PathBuf, strict: bool) -> Result<mpsc::Receiver<AgentConfig>, SetupError> {
    let mut hangup = signal(SignalKind::hangup()).map_err(SetupError::Signals)?;
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match crate::config::load(&config, strict) {
                Ok(loaded) => {
                    for warning in &loaded.warnings {
                        tracing::warn!("{warning}");
                    }
                    if sender.send(loaded.config).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "SIGHUP: the configuration does not load; the running one is kept")
                }
            }
        }
    });
    Ok(receiver)
}
