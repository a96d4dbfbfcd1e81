//! What a response does: a `ListShards` page goes to the listing (a new map releases held records); a
//! PutRecords response's records succeed, are retried after a backoff, are isolated to find a culprit, or
//! fail; and each user record completes once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Producer;
use crate::event::Event;
use crate::ids::{ShardId, ShardSlot, StreamIx};
use crate::listing::Listed;
use crate::outgoing::{AcceptedRecord, OutgoingRecord};
use crate::record::{
    AttemptError, AttemptErrorKind, RecordError, RecordFailure, RecordOutcome, RecordReceipt, UserRecord,
};
use crate::request::ListShardsOutput;
use crate::request::{PutRecordsResultEntry, RequestError, RequestErrorKind};
use crate::time::{deadline_after, earliest, has_passed};

/// Error code of the per-entry throttling result.
const THROTTLED: &str = "ProvisionedThroughputExceededException";

/// A Kinesis record of one response to retry, with the error of this attempt.
struct Failed {
    record: OutgoingRecord,
    error: AttemptError,
    /// Whether it may have been written anyway (a timeout, a write to the wrong shard): its records are
    /// then flagged `maybe_duplicated`.
    ambiguous: bool,
}

impl Producer {
    pub(super) fn on_list_shards(
        &mut self,
        now: Instant,
        s: StreamIx,
        result: Result<ListShardsOutput, RequestError>,
    ) {
        match self.listing.on_response(now, s, result) {
            Listed::Nothing => {}
            Listed::Failed { refused } => {
                if let Some(reason) = refused {
                    self.give_up_holding(now, s, reason);
                }
                self.telemetry.list_shards_failed();
            }
            Listed::Installed { open_shards, first_map, held } => {
                self.shard_queues.grow(s, self.listing.shard_count(s));
                self.drain.map_installed(s, open_shards);
                let stream = self.listing.target(s).clone();
                self.events.push_back(Event::ShardMapUpdated { stream, open_shards });
                for record in held {
                    self.route(now, s, record);
                }
                if first_map {
                    for record in self.collection.take_unpredicted(s) {
                        self.route(now, s, record);
                    }
                } else {
                    self.reroute_closed_shards(now, s);
                }
            }
        }
    }

    /// Gives up holding for the first shard map: held records go out aggregated by hash key, and so do later
    /// ones until a listing succeeds. Reported once per stream.
    pub(super) fn give_up_holding(&mut self, now: Instant, s: StreamIx, reason: String) {
        let Some(held) = self.listing.give_up_holding(s) else { return };
        self.telemetry.shard_map_fallback();
        let stream = self.listing.target(s).clone();
        self.events.push_back(Event::ShardMapUnavailable { stream, reason });
        for record in held {
            self.route(now, s, record);
        }
    }

    pub(super) fn on_put_records(
        &mut self,
        now: Instant,
        s: StreamIx,
        started: Instant,
        records: Vec<OutgoingRecord>,
        result: Result<Vec<PutRecordsResultEntry>, RequestError>,
    ) {
        self.telemetry.put_answered(now, s, started);
        let mut retry = Vec::new();
        match result {
            Ok(entries) if entries.len() == records.len() => {
                for (record, entry) in records.into_iter().zip(entries) {
                    self.on_entry(now, s, started, record, entry, &mut retry);
                }
            }
            Ok(entries) => {
                let message = format!("{} results for {} entries", entries.len(), records.len());
                let error = AttemptError::producer(AttemptErrorKind::RecordCountMismatch, message);
                retry.extend(records.into_iter().map(|record| Failed {
                    record,
                    error: error.clone(),
                    ambiguous: false,
                }));
            }
            Err(error) => {
                let attempt_error = AttemptError::request(&error);
                self.telemetry.request_failed(s, &attempt_error.code);
                match error.kind {
                    RequestErrorKind::Throttling if self.config.fail_if_throttled() => {
                        for record in records {
                            self.fail_all(now, s, started, record, &attempt_error, || {
                                RecordError::Throttled { message: error.message.clone() }
                            });
                        }
                    }
                    RequestErrorKind::Throttling
                    | RequestErrorKind::Transient
                    | RequestErrorKind::Timeout => {
                        let ambiguous = error.kind == RequestErrorKind::Timeout;
                        for record in records {
                            if error.kind == RequestErrorKind::Throttling
                                && let Some(slot) = record.slot
                            {
                                self.throttled(now, s, slot);
                            }
                            retry.push(Failed { record, error: attempt_error.clone(), ambiguous });
                        }
                    }
                    RequestErrorKind::InvalidRequest => {
                        self.on_invalid_request(now, s, started, records, &error, &attempt_error);
                    }
                    RequestErrorKind::StreamNotFound | RequestErrorKind::Fatal => {
                        if error.kind == RequestErrorKind::StreamNotFound {
                            self.listing.invalidate(s, started);
                        }
                        for record in records {
                            self.fail_all(now, s, started, record, &attempt_error, || {
                                RecordError::Rejected(error.clone())
                            });
                        }
                    }
                }
            }
        }
        self.schedule_retries(now, s, started, retry);
    }

    /// A request refused for its content: only the entries that caused it fail (see
    /// [`RequestErrorKind::InvalidRequest`]). An entry the error names, or any entry when it names none, is
    /// a suspect. A suspect of one user record fails if it was named or alone in its request; a suspect
    /// aggregate's user records are retried each alone; the other entries are re-sent at once. Every round
    /// fails or isolates at least one suspect, so this ends.
    fn on_invalid_request(
        &mut self,
        now: Instant,
        s: StreamIx,
        started: Instant,
        records: Vec<OutgoingRecord>,
        error: &RequestError,
        attempt_error: &AttemptError,
    ) {
        let named = error.named_entries(records.len());
        let alone = records.len() == 1;
        for (index, record) in records.into_iter().enumerate() {
            let suspect = named.is_empty() || named.binary_search(&index).is_ok();
            if suspect && record.users.len() == 1 && (alone || !named.is_empty()) {
                self.fail_all(now, s, started, record, attempt_error, || {
                    RecordError::Rejected(error.clone())
                });
                continue;
            }
            for mut user in record.users {
                user.push_attempt(started, now, attempt_error.clone()).isolated |= suspect;
                if has_passed(user.expiration, now) {
                    self.fail_expired(s, user);
                    continue;
                }
                self.telemetry.retried();
                user.deadline = earliest(Some(now), user.expiration);
                self.route(now, s, user);
            }
        }
    }

    fn on_entry(
        &mut self,
        now: Instant,
        s: StreamIx,
        started: Instant,
        record: OutgoingRecord,
        entry: PutRecordsResultEntry,
        retry: &mut Vec<Failed>,
    ) {
        match entry {
            PutRecordsResultEntry::Success { shard_id, sequence_number } => {
                self.retries.succeeded(s, record.slot);
                let predicted = record.slot.map(|slot| self.listing.shard_id(s, slot));
                if predicted.is_some_and(|predicted| *predicted != shard_id) {
                    self.telemetry.wrong_shard();
                    self.listing.invalidate(s, started);
                    // Kinesis routed it by its first record's hash key. The KCL drops a whole aggregate if any
                    // record in it is outside the shard, so succeed only if every one is inside; otherwise
                    // retry them all (the written copy is dropped by KCL consumers).
                    let all_inside = record.users.len() == 1
                        || record
                            .users
                            .iter()
                            .all(|user| self.listing.shard_holds(s, &shard_id, user.hash_key));
                    if !all_inside {
                        let message =
                            format!("written to {shard_id}, which does not hold all of its records");
                        let error = AttemptError::producer(AttemptErrorKind::WrongShard, message);
                        retry.push(Failed { record, error, ambiguous: true });
                        return;
                    }
                }
                self.succeed(now, s, started, record, shard_id, sequence_number);
            }
            PutRecordsResultEntry::Failure { error_code, error_message } => {
                let throttled = error_code == THROTTLED;
                self.telemetry.entry_failed(s, record.slot, &error_code, throttled);
                if throttled && let Some(slot) = record.slot {
                    self.throttled(now, s, slot);
                }
                let error = AttemptError::service(error_code, error_message);
                if throttled && self.config.fail_if_throttled() {
                    let message = error.message.clone();
                    self.fail_all(now, s, started, record, &error, || RecordError::Throttled {
                        message: message.clone(),
                    });
                } else {
                    retry.push(Failed { record, error, ambiguous: false });
                }
            }
        }
    }

    fn throttled(&mut self, now: Instant, s: StreamIx, slot: ShardSlot) {
        self.drain.throttled(now, s);
        if let Some(rate_factor) = self.shard_queues.throttled(now, s, slot) {
            self.events.push_back(Event::ShardThrottled {
                stream: self.listing.target(s).clone(),
                shard_id: self.listing.shard_id(s, slot).clone(),
                rate_factor,
            });
        }
    }

    /// Puts failed Kinesis records' user records into backoff: one delay per shard per response, with full
    /// jitter, doubling with the shard's consecutive failures.
    fn schedule_retries(&mut self, now: Instant, s: StreamIx, started: Instant, retry: Vec<Failed>) {
        let mut delays: BTreeMap<Option<ShardSlot>, Duration> = BTreeMap::new();
        // A retried record is due to be sent half a buffering time after its backoff: enough to share an
        // aggregate with the records retried with it, short of a full buffering time more.
        let half_buffer = self.config.record_max_buffered_time() / 2;
        for Failed { record, error, ambiguous } in retry {
            let delay = *delays.entry(record.slot).or_insert_with(|| self.retries.backoff(s, record.slot));
            let due = deadline_after(now, delay);
            for mut user in record.users {
                user.push_attempt(started, now, error.clone()).maybe_duplicated |= ambiguous;
                if has_passed(user.expiration, now) {
                    self.fail_expired(s, user);
                    continue;
                }
                self.telemetry.retried();
                let Some(due) = earliest(due, user.expiration) else {
                    // Neither a due time nor an expiration fits in an `Instant`: retry right away.
                    self.route(now, s, user);
                    continue;
                };
                user.deadline = earliest(deadline_after(due, half_buffer), user.expiration);
                self.retries.schedule(due, s, user);
            }
        }
    }

    fn succeed(
        &mut self,
        now: Instant,
        s: StreamIx,
        started: Instant,
        record: OutgoingRecord,
        shard_id: ShardId,
        sequence_number: String,
    ) {
        self.telemetry.kinesis_record_put(s, self.listing.slot_of(s, &shard_id), &record);
        self.drain.written(now, s, record.users.iter().map(AcceptedRecord::cost).sum());
        // Shared by every user record of the aggregate.
        let sequence_number: Arc<str> = sequence_number.into();
        for mut user in record.users {
            let attempts = user.attempts_with_success(started, now);
            let cost = user.cost();
            let receipt = RecordReceipt {
                shard_id: shard_id.clone(),
                sequence_number: sequence_number.clone(),
                attempts,
                maybe_duplicated: user.maybe_duplicated(),
                put_time: user.arrival,
            };
            self.complete(s, user.id, cost, Ok(receipt));
        }
    }

    fn fail_all(
        &mut self,
        now: Instant,
        s: StreamIx,
        started: Instant,
        record: OutgoingRecord,
        error: &AttemptError,
        reason: impl Fn() -> RecordError,
    ) {
        for mut user in record.users {
            user.push_attempt(started, now, error.clone());
            self.fail(s, user, reason());
        }
    }

    pub(super) fn fail_expired(&mut self, s: StreamIx, record: AcceptedRecord) {
        self.telemetry.expired(s);
        let attempts = record.failed_attempts().len();
        self.fail(s, record, RecordError::Expired { attempts });
    }

    fn fail(&mut self, s: StreamIx, mut record: AcceptedRecord, error: RecordError) {
        self.telemetry.failed(s, &record);
        let cost = record.cost();
        let returned = self.config.return_user_record_on_failure().then(|| {
            Box::new(UserRecord {
                stream: self.listing.target(s).clone(),
                partition_key: record.partition_key.clone(),
                explicit_hash_key: record.explicit_hash_key().map(|key| key.to_string()),
                data: record.data.clone(),
            })
        });
        let failure = RecordFailure {
            error,
            maybe_duplicated: record.maybe_duplicated(),
            attempts: record.take_attempts(),
            put_time: record.arrival,
            record: returned,
        };
        self.complete(s, record.id, cost, Err(failure));
    }

    fn complete(
        &mut self,
        s: StreamIx,
        id: crate::ids::RecordId,
        cost: usize,
        result: Result<RecordReceipt, RecordFailure>,
    ) {
        self.telemetry.completed(s);
        let stream = self.listing.target(s).clone();
        self.events.push_back(Event::RecordCompleted(RecordOutcome { id, stream, result }));
        self.drain.completed(s, cost);
        self.completion.complete(&self.config, s, id, cost, &mut self.events);
    }
}
