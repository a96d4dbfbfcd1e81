//! The Kinesis client from `agent.json`'s keys, and the stop signals.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kinesis::config::Credentials;
use kpl_tokio::AwsBackend;
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

/// `endpoint` as a URL: a host name without scheme is taken as `https://`, as the agent's SDK does.
pub(crate) fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") { endpoint.to_owned() } else { format!("https://{endpoint}") }
}

/// The AWS SDK configuration every client of the agent shares: the SDK's default chain (region,
/// credentials), with `kinesis.region` and the static keys of `agent.json` when given. Endpoints are per
/// service.
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
    Ok(sdk)
}

/// The producer's backend on [`sdk_config`], with `kinesis.endpoint` when given.
pub async fn aws_backend(config: &AgentConfig) -> Result<AwsBackend, SetupError> {
    let mut kinesis = aws_sdk_kinesis::config::Builder::from(&sdk_config(config).await?);
    if let Some(endpoint) = &config.kinesis_endpoint {
        kinesis.set_endpoint_url(Some(endpoint_url(endpoint)));
    }
    Ok(AwsBackend::from_conf(kinesis.build()))
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
