//! The aws-sdk-kinesis backend, and the one place where SDK errors become the core's error classes.

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::operation::list_shards::ListShardsOutput as SdkListShardsOutput;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, Shard, ShardFilter, ShardFilterType};
use kpl_core::{
    ListShardsOutput, ListShardsRequest, PutRecordsRequest, PutRecordsResultEntry, Request, RequestError,
    RequestErrorKind, Response, ShardDescription, StreamTarget,
};

use crate::backend::Backend;

/// Longest error message kept from a response. Some servers embed whole requests in their messages
/// (kinesalite's `ValidationException` can carry ~35 KB).
const MAX_MESSAGE: usize = 512;

/// Sends requests to Kinesis with aws-sdk-kinesis.
///
/// The SDK's own retries are always off (`RetryConfig::disabled()`, also on a client you pass in): retries,
/// backoff and throttling are decided by the producer, per record. TLS certificates are verified (the SDK's
/// default HTTPS client); plain `http://` endpoints work for local servers such as kinesalite.
#[derive(Debug, Clone)]
pub struct AwsBackend {
    client: Client,
}

impl AwsBackend {
    /// From the application's shared SDK configuration, the Rust SDK's convention
    /// (`aws_config::defaults(BehaviorVersion::v2025_..()).load().await`): its region, credentials, endpoint,
    /// HTTP client, timeouts and behavior version are used as they are, except retries, which are turned off.
    /// A configuration without a behavior version gets [`BehaviorVersion::latest()`] (the SDK would panic).
    pub fn from_sdk_config(sdk_config: &aws_config::SdkConfig) -> Self {
        let mut builder = aws_sdk_kinesis::config::Builder::from(sdk_config);
        if sdk_config.behavior_version().is_none() {
            builder.set_behavior_version(Some(BehaviorVersion::latest()));
        }
        Self::from_conf(builder.build())
    }

    /// A client from aws-config's default chain: region, credentials and profile from the environment,
    /// shared config files, SSO, container or instance metadata. It uses the SDK's latest behavior version
    /// ([`BehaviorVersion::latest()`]), so SDK defaults can change when the SDK is upgraded: to pin one, load
    /// the configuration yourself and use [`from_sdk_config`](Self::from_sdk_config).
    pub async fn from_env() -> Self {
        Self::from_loader(aws_config::defaults(BehaviorVersion::latest())).await
    }

    /// As [`from_env`](Self::from_env), sending to `endpoint_url` (a local Kinesis-compatible server, or a
    /// VPC endpoint) instead of the region's endpoint.
    pub async fn from_env_with_endpoint(endpoint_url: impl Into<String>) -> Self {
        Self::from_loader(aws_config::defaults(BehaviorVersion::latest()).endpoint_url(endpoint_url)).await
    }

    async fn from_loader(loader: aws_config::ConfigLoader) -> Self {
        let config = loader.retry_config(RetryConfig::disabled()).load().await;
        Self::from_sdk_config(&config)
    }

    /// From an SDK configuration; its retry configuration is replaced by `RetryConfig::disabled()`.
    pub fn from_conf(config: aws_sdk_kinesis::Config) -> Self {
        let config = config.to_builder().retry_config(RetryConfig::disabled()).build();
        Self { client: Client::from_conf(config) }
    }

    /// From a client you configured: its configuration is used with retries disabled.
    pub fn from_client(client: Client) -> Self {
        Self::from_conf(client.config().clone())
    }

    /// The client requests go through (retries disabled).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl Backend for AwsBackend {
    async fn send(&self, request: Request) -> Response {
        match request {
            Request::ListShards(list) => Response::ListShards(self.list_shards(list).await),
            Request::PutRecords(put) => Response::PutRecords(self.put_records(put).await),
            // A call added to the core after this backend was written.
            other => {
                other.kind().failure(fatal(format!("AwsBackend cannot send {}", other.kind().operation())))
            }
        }
    }
}

impl AwsBackend {
    async fn list_shards(&self, request: ListShardsRequest) -> Result<ListShardsOutput, RequestError> {
        let mut call =
            self.client.list_shards().max_results(i32::try_from(request.max_results).unwrap_or(i32::MAX));
        call = match request.next_token {
            // A follow-up page names only the token.
            Some(token) => call.next_token(token),
            None => {
                let call = match &request.stream {
                    StreamTarget::Name(name) => call.stream_name(name.as_ref()),
                    StreamTarget::Arn(arn) => call.stream_arn(arn.as_ref()),
                };
                if request.only_open_shards {
                    let filter =
                        ShardFilter::builder().r#type(ShardFilterType::AtLatest).build().map_err(fatal)?;
                    call.shard_filter(filter)
                } else {
                    call
                }
            }
        };
        let output = call.send().await.map_err(classify)?;
        list_shards_output(&output)
    }

    async fn put_records(
        &self,
        request: PutRecordsRequest,
    ) -> Result<Vec<PutRecordsResultEntry>, RequestError> {
        let entries = request
            .entries
            .into_iter()
            .map(|entry| {
                PutRecordsRequestEntry::builder()
                    .partition_key(entry.partition_key)
                    .set_explicit_hash_key(entry.explicit_hash_key)
                    // The entry's `Bytes` as they are (a reference count, not a copy of the data per attempt).
                    .data(Blob::from_maybe_shared(entry.data))
                    .build()
                    .map_err(fatal)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let call = self.client.put_records().set_records(Some(entries));
        let call = match &request.stream {
            StreamTarget::Name(name) => call.stream_name(name.as_ref()),
            StreamTarget::Arn(arn) => call.stream_arn(arn.as_ref()),
        };
        let output = call.send().await.map_err(classify)?;
        Ok(output
            .records()
            .iter()
            .map(|entry| match (entry.error_code(), entry.shard_id(), entry.sequence_number()) {
                (None, Some(shard_id), Some(sequence_number)) => PutRecordsResultEntry::Success {
                    shard_id: shard_id.into(),
                    sequence_number: sequence_number.to_owned(),
                },
                (code, _, _) => PutRecordsResultEntry::Failure {
                    error_code: code.unwrap_or("MissingShardIdOrSequenceNumber").to_owned(),
                    error_message: truncate(entry.error_message().unwrap_or_default()),
                },
            })
            .collect())
    }
}

/// The core's view of a page: hash keys parsed from their decimal strings, `is_open` when the shard has no
/// ending sequence number. A malformed page is a transient error (the listing is retried).
fn list_shards_output(output: &SdkListShardsOutput) -> Result<ListShardsOutput, RequestError> {
    let shards = output.shards().iter().map(shard_description).collect::<Result<Vec<_>, _>>()?;
    Ok(ListShardsOutput { shards, next_token: output.next_token().map(str::to_owned) })
}

fn shard_description(shard: &Shard) -> Result<ShardDescription, RequestError> {
    let malformed = |what: &str| {
        RequestError::new(
            RequestErrorKind::Transient,
            None,
            format!("ListShards returned shard {} with {what}", shard.shard_id()),
        )
    };
    let range = shard.hash_key_range().ok_or_else(|| malformed("no hash key range"))?;
    let parse =
        |key: &str| key.parse::<u128>().map_err(|_| malformed("a hash key that is not a decimal u128"));
    Ok(ShardDescription {
        shard_id: shard.shard_id().into(),
        starting_hash_key: parse(range.starting_hash_key())?,
        ending_hash_key: parse(range.ending_hash_key())?,
        is_open: shard.sequence_number_range().is_none_or(|range| range.ending_sequence_number().is_none()),
    })
}

fn fatal(error: impl std::fmt::Display) -> RequestError {
    RequestError::new(RequestErrorKind::Fatal, None, truncate(&error.to_string()))
}

fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_owned(),
    }
}

/// Every SDK error mapped onto the core's classes, in one place:
///
/// | SDK error | class |
/// |---|---|
/// | service error with a throttling code (`ProvisionedThroughputExceededException`, `LimitExceededException`, KMS throttling, ...), or HTTP 429 | `Throttling` |
/// | `ResourceNotFoundException` | `StreamNotFound` |
/// | the request's content refused (`ValidationException`, `InvalidArgumentException`, HTTP 413) | `InvalidRequest` |
/// | access and signature errors, KMS key errors, other 4xx | `Fatal` |
/// | `InternalFailure`, `ServiceUnavailable`, other 5xx, expired credentials (refreshed on the next call) | `Transient` |
/// | could not connect or send (`DispatchFailure` that is not a timeout) | `Transient` |
/// | SDK timeout, or a connection lost or a response unreadable after the request was sent | `Timeout` (ambiguous: may have been written) |
/// | request could not be built | `Fatal` |
///
/// Messages are cut to 512 characters.
pub fn classify<E>(error: SdkError<E, HttpResponse>) -> RequestError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = truncate(&error_message(&error));
    match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code();
            let status = service.raw().status().as_u16();
            RequestError {
                kind: RequestErrorKind::of_service_error(code, status),
                code: code.map(str::to_owned),
                message,
            }
        }
        SdkError::TimeoutError(_) => {
            RequestError::new(RequestErrorKind::Timeout, Some("SdkTimeout"), message)
        }
        SdkError::DispatchFailure(dispatch) if dispatch.is_timeout() => {
            RequestError::new(RequestErrorKind::Timeout, Some("DispatchTimeout"), message)
        }
        SdkError::DispatchFailure(dispatch) if dispatch.is_user() => {
            RequestError::new(RequestErrorKind::Fatal, Some("DispatchFailure"), message)
        }
        SdkError::DispatchFailure(_) => {
            RequestError::new(RequestErrorKind::Transient, Some("DispatchFailure"), message)
        }
        SdkError::ResponseError(_) => {
            RequestError::new(RequestErrorKind::Timeout, Some("ResponseError"), message)
        }
        SdkError::ConstructionFailure(_) => {
            RequestError::new(RequestErrorKind::Fatal, Some("ConstructionFailure"), message)
        }
        _ => RequestError::new(RequestErrorKind::Transient, None, message),
    }
}

/// The error's own message, else its description with its sources.
fn error_message<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(message) = error.message() {
        return message.to_owned();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use aws_sdk_kinesis::config::http::HttpResponse;
    use aws_sdk_kinesis::error::ErrorMetadata;
    use aws_sdk_kinesis::operation::put_records::PutRecordsError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn service_error(code: Option<&str>, status: u16) -> RequestError {
        let mut meta = ErrorMetadata::builder().message("the message");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let error = PutRecordsError::generic(meta.build());
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        classify(SdkError::service_error(error, raw))
    }

    #[test]
    fn service_errors_are_classified_by_code_then_status() {
        let cases = [
            (Some("ProvisionedThroughputExceededException"), 400, RequestErrorKind::Throttling),
            (Some("LimitExceededException"), 400, RequestErrorKind::Throttling),
            (Some("KMSThrottlingException"), 400, RequestErrorKind::Throttling),
            (Some("ResourceNotFoundException"), 400, RequestErrorKind::StreamNotFound),
            (Some("ValidationException"), 400, RequestErrorKind::InvalidRequest),
            (Some("InvalidArgumentException"), 400, RequestErrorKind::InvalidRequest),
            (Some("AccessDeniedException"), 400, RequestErrorKind::Fatal),
            (Some("KMSDisabledException"), 400, RequestErrorKind::Fatal),
            (Some("SomethingNew"), 400, RequestErrorKind::Fatal),
            (Some("ExpiredTokenException"), 400, RequestErrorKind::Transient),
            (Some("InternalFailure"), 500, RequestErrorKind::Transient),
            (Some("ServiceUnavailable"), 503, RequestErrorKind::Transient),
            (None, 500, RequestErrorKind::Transient),
            (None, 503, RequestErrorKind::Transient),
            (None, 429, RequestErrorKind::Throttling),
            (None, 413, RequestErrorKind::InvalidRequest),
            (None, 403, RequestErrorKind::Fatal),
        ];
        for (code, status, kind) in cases {
            let error = service_error(code, status);
            assert_eq!(error.kind, kind, "{code:?} {status}");
            assert_eq!(error.code.as_deref(), code);
            assert_eq!(error.message, "the message");
        }
    }

    #[test]
    fn transport_errors_are_transient_or_ambiguous() {
        let timeout: SdkError<PutRecordsError, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(classify(timeout).kind, RequestErrorKind::Timeout);
        let raw = HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::empty());
        let unreadable: SdkError<PutRecordsError, HttpResponse> = SdkError::response_error("truncated", raw);
        assert_eq!(classify(unreadable).kind, RequestErrorKind::Timeout);
        let unbuilt: SdkError<PutRecordsError, HttpResponse> = SdkError::construction_failure("no stream");
        assert_eq!(classify(unbuilt).kind, RequestErrorKind::Fatal);
    }

    #[test]
    fn an_sdk_config_without_a_behavior_version_still_makes_a_backend() {
        let sdk = aws_config::SdkConfig::builder().region(aws_config::Region::new("eu-west-1")).build();
        let backend = AwsBackend::from_sdk_config(&sdk);
        assert_eq!(backend.client().config().region().map(|region| region.as_ref()), Some("eu-west-1"));
        assert_eq!(backend.client().config().retry_config().map(|retry| retry.max_attempts()), Some(1));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(40_000);
        assert_eq!(truncate(&long).chars().count(), MAX_MESSAGE + 1);
        assert_eq!(truncate("short"), "short");
    }
}
