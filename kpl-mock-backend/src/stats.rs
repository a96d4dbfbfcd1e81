//! What the mock did: requests, entries, throttles and every injected fault, for a simulation's report.

use std::fmt;

/// Faults injected, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests dropped (answered `Timeout`, nothing written).
    pub dropped_requests: u64,
    /// Responses lost after processing (answered `Timeout`, possibly written).
    pub lost_responses: u64,
    /// Responses delivered twice.
    pub duplicated_responses: u64,
    /// Requests throttled as a whole.
    pub throttled_requests: u64,
    /// Requests answered HTTP 500 `InternalFailure`.
    pub internal_failures: u64,
    /// Requests answered HTTP 503 `ServiceUnavailable`.
    pub service_unavailable: u64,
    /// `PutRecords` entries failed alone with `InternalFailure`.
    pub entry_internal_failures: u64,
}

impl FaultCounts {
    /// All faults together.
    pub fn total(&self) -> u64 {
        self.dropped_requests
            + self.lost_responses
            + self.duplicated_responses
            + self.throttled_requests
            + self.internal_failures
            + self.service_unavailable
            + self.entry_internal_failures
    }
}

/// Counters of everything the mock handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockStats {
    /// `ListShards` requests received.
    pub list_shards_requests: u64,
    /// `PutRecords` requests received.
    pub put_records_requests: u64,
    /// Requests refused by validation, for an unknown stream or an unusable `NextToken` (not faults).
    pub rejected_requests: u64,
    /// Entries in the `PutRecords` requests received, whatever became of them.
    pub entries_received: u64,
    /// Entries written.
    pub entries_committed: u64,
    /// Bytes written: partition keys plus data, as the shard limits count them.
    pub bytes_committed: u64,
    /// Entries refused by a shard's write limits (`ProvisionedThroughputExceededException`).
    pub entries_throttled: u64,
    /// Faults injected.
    pub faults: FaultCounts,
}

impl fmt::Display for MockStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faults = &self.faults;
        write!(
            f,
            "requests: {} ListShards, {} PutRecords, {} rejected; entries: {} received, {} committed, {} \
             throttled; faults: {} dropped, {} lost responses, {} duplicated responses, \
             {} throttled, {} HTTP 500, {} HTTP 503, {} entry \
             InternalFailure",
            self.list_shards_requests,
            self.put_records_requests,
            self.rejected_requests,
            self.entries_received,
            self.entries_committed,
            self.entries_throttled,
            faults.dropped_requests,
            faults.lost_responses,
            faults.duplicated_responses,
            faults.throttled_requests,
            faults.internal_failures,
            faults.service_unavailable,
            faults.entry_internal_failures,
        )
    }
}
