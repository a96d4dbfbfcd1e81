//! Requests the core asks the adapter to send, and the responses the adapter hands back. Plain values: the
//! core never sees an SDK type; the adapter maps both ways (see `RequestErrorKind` for the classes).

use bytes::Bytes;

use crate::ids::{RequestId, ShardId, StreamTarget};

/// A request to send, with the id its response must be handed back under.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Correlates the response: pass it to `Producer::handle_response`.
    pub id: RequestId,
    /// What to send.
    pub request: Request,
}

/// A Kinesis API call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// `ListShards`, one page.
    ListShards(ListShardsRequest),
    /// `PutRecords`.
    PutRecords(PutRecordsRequest),
}

/// One page of `ListShards`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListShardsRequest {
    /// The stream being listed. On a follow-up page (`next_token` set) Kinesis rejects the stream name or
    /// ARN alongside the token: send only the token; the stream is here for routing and logging.
    pub stream: StreamTarget,
    /// Continuation token of a follow-up page.
    pub next_token: Option<String>,
    /// `MaxResults`.
    pub max_results: u32,
    /// On the first page, ask only for open shards (`ShardFilter { Type: AT_LATEST }`).
    pub only_open_shards: bool,
}

/// `PutRecords`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsRequest {
    /// The stream written to.
    pub stream: StreamTarget,
    /// The entries, at most `collection_max_count`, within `collection_max_size`.
    pub entries: Vec<PutRecordsEntry>,
    /// For logs: the highest attempt among its entries (1: all are on their first try; an entry counts as
    /// its first user record's attempt). Not sent.
    pub attempt: u32,
    /// For logs: how many shards its entries were predicted to (0 while the stream's shard map is not
    /// known). Not sent.
    pub shards: u32,
}

impl PutRecordsRequest {
    /// A request of `entries` to `stream`, on its first attempt, to shards not predicted (a backend test's
    /// or a custom producer's request: the core fills in [`attempt`](Self::attempt) and
    /// [`shards`](Self::shards) itself).
    pub fn new(stream: StreamTarget, entries: Vec<PutRecordsEntry>) -> Self {
        Self { stream, entries, attempt: 1, shards: 0 }
    }
}

/// One entry of a `PutRecords` request: one Kinesis record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRecordsEntry {
    /// `PartitionKey`.
    pub partition_key: String,
    /// `ExplicitHashKey`, decimal. The producer always sets it, as the KPL does.
    pub explicit_hash_key: Option<String>,
    /// `Data`: one user record's data, or an aggregate of several.
    pub data: Bytes,
}

/// What came back for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// The outcome of a `ListShards` page.
    ListShards(Result<ListShardsOutput, RequestError>),
    /// The outcome of `PutRecords`: one result per entry, in request order.
    PutRecords(Result<Vec<PutRecordsResultEntry>, RequestError>),
}

/// Which Kinesis API call a [`Request`] is: lets an adapter name, log and fail a request without matching
/// on every kind (and without a "wrong kind" path of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestKind {
    /// `ListShards`.
    ListShards,
    /// `PutRecords`.
    PutRecords,
}

impl RequestKind {
    /// The Kinesis API operation's name (`"ListShards"`, `"PutRecords"`).
    pub fn operation(self) -> &'static str {
        match self {
            Self::ListShards => "ListShards",
            Self::PutRecords => "PutRecords",
        }
    }

    /// The response of this kind that fails the whole request with `error` (a timeout, a task that ended
    /// without an answer, a call the adapter cannot make).
    pub fn failure(self, error: RequestError) -> Response {
        match self {
            Self::ListShards => Response::ListShards(Err(error)),
            Self::PutRecords => Response::PutRecords(Err(error)),
        }
    }
}

impl Request {
    /// Which call this is.
    pub fn kind(&self) -> RequestKind {
        match self {
            Self::ListShards(_) => RequestKind::ListShards,
            Self::PutRecords(_) => RequestKind::PutRecords,
        }
    }

    /// The stream it is about.
    pub fn stream(&self) -> &StreamTarget {
        match self {
            Self::ListShards(list) => &list.stream,
            Self::PutRecords(put) => &put.stream,
        }
    }
}

impl Response {
    /// The error that failed the whole request, if it did.
    pub fn error(&self) -> Option<&RequestError> {
        match self {
            Self::ListShards(Err(error)) | Self::PutRecords(Err(error)) => Some(error),
            Self::ListShards(Ok(_)) | Self::PutRecords(Ok(_)) => None,
        }
    }
}

/// A page of `ListShards`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListShardsOutput {
    /// The shards of this page.
    pub shards: Vec<ShardDescription>,
    /// Set when there are more pages.
    pub next_token: Option<String>,
}

/// One shard as `ListShards` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardDescription {
    /// `ShardId`.
    pub shard_id: ShardId,
    /// `HashKeyRange.StartingHashKey`.
    pub starting_hash_key: u128,
    /// `HashKeyRange.EndingHashKey` (inclusive).
    pub ending_hash_key: u128,
    /// False when the shard has an `EndingSequenceNumber` (closed by a split or merge). Some servers ignore
    /// the open-shard filter, so the producer checks this itself.
    pub is_open: bool,
}

/// The result of one `PutRecords` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutRecordsResultEntry {
    /// Written.
    Success {
        /// The shard that took it.
        shard_id: ShardId,
        /// Its sequence number there.
        sequence_number: String,
    },
    /// Not written.
    Failure {
        /// `ErrorCode`, e.g. `ProvisionedThroughputExceededException` or `InternalFailure`.
        error_code: String,
        /// `ErrorMessage`.
        error_message: String,
    },
}

/// A whole request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} error{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
pub struct RequestError {
    /// How the producer reacts to it.
    pub kind: RequestErrorKind,
    /// The service's error code, where there is one (e.g. `AccessDeniedException`).
    pub code: Option<String>,
    /// A human-readable description.
    pub message: String,
}

/// Classes of whole-request errors, each with its own reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestErrorKind {
    /// Throttled (`ProvisionedThroughputExceededException`, `LimitExceededException`, KMS throttling, 429):
    /// retried with backoff, and the limiter slows down.
    Throttling,
    /// Transient (5xx, connection failures): retried with backoff.
    Transient,
    /// No response in time. Ambiguous: the request may have been written, so its records are retried and
    /// may be duplicated; their results say so.
    Timeout,
    /// The stream does not exist (`ResourceNotFoundException`): the shard map is refreshed and the
    /// records fail at once.
    StreamNotFound,
    /// The request's content was refused (`ValidationException`, `InvalidArgumentException`, HTTP 413):
    /// something one entry carries, such as a record over the stream's size limit. Only that entry's
    /// records fail; the others are re-sent at once. The entries the message names (`records.N`, 1-based,
    /// as the service writes them; see [`RequestError::named_entries`]) are the culprits; if it names none,
    /// every entry is retried alone to find which. A refusal of a request with a single user record fails
    /// that record.
    InvalidRequest,
    /// Will not succeed by retrying (validation, access denied, KMS key errors): the records fail at once.
    Fatal,
}

/// Error codes the producer retries with backoff and a slower rate to the shard.
const THROTTLING: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "KMSThrottlingException",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Error codes for a request whose content was refused: something one entry carries.
const INVALID_REQUEST: &[&str] = &["ValidationException", "InvalidArgumentException"];

/// Error codes retrying cannot fix, whatever the request carries.
const FATAL: &[&str] = &[
    "AccessDeniedException",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSNotFoundException",
    "KMSOptInRequired",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "InvalidClientTokenId",
    "ResourceInUseException",
];

impl RequestErrorKind {
    /// The class of a Kinesis service error from its error code, or from its HTTP status when the code is
    /// unknown: throttling codes and 429 are [`Throttling`](Self::Throttling); `ResourceNotFoundException`
    /// is [`StreamNotFound`](Self::StreamNotFound); `ValidationException`, `InvalidArgumentException` and
    /// 413 are [`InvalidRequest`](Self::InvalidRequest); access, signature and KMS key errors and other 4xx
    /// are [`Fatal`](Self::Fatal); 5xx and `ExpiredTokenException` (credentials are refreshed on the next
    /// call) are [`Transient`](Self::Transient). Adapters and simulated backends share it, so they cannot
    /// classify one code two ways.
    pub fn of_service_error(code: Option<&str>, status: u16) -> Self {
        match code {
            Some(code) if THROTTLING.contains(&code) => Self::Throttling,
            Some("ResourceNotFoundException") => Self::StreamNotFound,
            Some(code) if INVALID_REQUEST.contains(&code) => Self::InvalidRequest,
            Some(code) if FATAL.contains(&code) => Self::Fatal,
            _ => match status {
                429 => Self::Throttling,
                413 => Self::InvalidRequest,
                400..=499 if code != Some("ExpiredTokenException") => Self::Fatal,
                _ => Self::Transient,
            },
        }
    }
}

impl RequestError {
    /// A request error of the given kind.
    pub fn new(kind: RequestErrorKind, code: Option<&str>, message: impl Into<String>) -> Self {
        Self { kind, code: code.map(str::to_owned), message: message.into() }
    }

    /// The entries of a request of `entries` entries that the message names, as 0-based indexes in
    /// increasing order: the service names a member as `records.N` with `N` 1-based (e.g. `Value at
    /// 'records.2.member.data' failed to satisfy constraint`). Positions outside the request are ignored.
    pub fn named_entries(&self, entries: usize) -> Vec<usize> {
        const MEMBER: &str = "records.";
        let mut named: Vec<usize> = self
            .message
            .match_indices(MEMBER)
            .filter_map(|(at, _)| {
                let digits = &self.message[at + MEMBER.len()..];
                let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
                digits[..end].parse::<usize>().ok()
            })
            .filter(|&position| (1..=entries).contains(&position))
            .map(|position| position - 1)
            .collect();
        named.sort_unstable();
        named.dedup();
        named
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_entries_are_the_services_1_based_members_as_indexes() {
        let error = |message: &str| RequestError::new(RequestErrorKind::InvalidRequest, None, message);
        let two = error(
            "2 validation errors detected: Value at 'records.3.member.data' failed to satisfy constraint: \
             Member must have length less than or equal to 1048576; Value 'x' at 'records.1.member.partitionKey' \
             failed; again records.3",
        );
        assert_eq!(two.named_entries(3), vec![0, 2]);
        // Out of the request, or no number: ignored.
        assert_eq!(two.named_entries(2), vec![0]);
        assert_eq!(error("Records size exceeds 5 MB limit").named_entries(10), Vec::<usize>::new());
        assert_eq!(error("at 'records.0' and records. and records.x").named_entries(10), Vec::<usize>::new());
    }
}
