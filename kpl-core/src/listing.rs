//! Listing: each stream's shards, learnt through paginated `ListShards` requests and retried with backoff;
//! the shard table (ids, hash-key ranges, slots) and the prediction map built from it (`shard_map.rs`, pure);
//! and the records held for a stream's first map (`ShardMapWait::Hold`). Owns the listing timers.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::ids::{ShardId, ShardSlot, StreamIndex, StreamIx, StreamTarget};
use crate::map::DetMap;
use crate::metrics::Names;
use crate::outgoing::AcceptedRecord;
use crate::request::{ListShardsOutput, ListShardsRequest, RequestError, RequestErrorKind, ShardDescription};
use crate::shard_map::{ShardMap, covers_key_space};
use crate::time::has_passed;

/// First delay before retrying a failed `ListShards`; then ×1.5 per failure up to the maximum (the KPL's).
const LIST_SHARDS_MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Growth of that delay per failure (the KPL's).
const LIST_SHARDS_BACKOFF_GROWTH: f64 = 1.5;
/// Largest delay before retrying a failed `ListShards`.
const LIST_SHARDS_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// `MaxResults` of a `ListShards` page (the API's largest).
const LIST_SHARDS_PAGE: u32 = 1000;

/// Where listing a stream's shards stands.
#[derive(Debug)]
enum ListingState {
    /// Nothing to do.
    Idle,
    /// A `ListShards` page is to be sent.
    Due { next_token: Option<String>, shards: Vec<ShardDescription> },
    /// A page is in flight.
    InFlight { shards: Vec<ShardDescription> },
    /// The last listing failed; try again then.
    Waiting { until: Instant },
}

/// One shard the producer has seen in a listing.
#[derive(Debug)]
struct Shard {
    id: ShardId,
    starting_hash_key: u128,
    ending_hash_key: u128,
}

/// The listing of one stream.
#[derive(Debug)]
struct StreamListing {
    target: StreamTarget,
    state: ListingState,
    backoff: Duration,
    /// Prediction map over open shards; `None` until the first listing.
    map: Option<ShardMap>,
    /// When the current map was installed.
    map_updated_at: Option<Instant>,
    /// Every shard seen, open or recently closed, by slot.
    shards: Vec<Shard>,
    slot_by_id: DetMap<ShardId, ShardSlot>,
    /// Records waiting for the first shard map (`ShardMapWait::Hold`).
    held: Vec<AcceptedRecord>,
    /// When holding for the first shard map gives up (`shard_map_wait_timeout` after the stream was seen).
    hold_until: Option<Instant>,
    /// No shard map could be had in time: records are aggregated by hash key until one arrives.
    map_unavailable: bool,
}

/// Something the listing wakes up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ListingTimer {
    /// Retry a failed `ListShards`.
    Retry(StreamIx),
    /// Held records may have expired.
    Held(StreamIx),
    /// Holding for the first shard map may have to give up.
    MapWait(StreamIx),
}

/// What a `ListShards` response led to.
#[must_use]
#[derive(Debug)]
pub(crate) enum Listed {
    /// Nothing for the producer to do: a next page is due (or the response was for no listing).
    Nothing,
    /// The listing failed or came back incomplete; it is retried after a backoff.
    Failed {
        /// Set when it was refused for good while records are held: the reason to give up holding with
        /// ([`Listing::give_up_holding`]).
        refused: Option<String>,
    },
    /// A complete listing was installed.
    Installed {
        /// Open shards in the new map.
        open_shards: usize,
        /// Whether it is the stream's first map.
        first_map: bool,
        /// The records held for it.
        held: Vec<AcceptedRecord>,
    },
}

/// The listing of every stream, and the streams' indexes.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    streams: Vec<StreamListing>,
    index: StreamIndex<StreamIx>,
    /// Never cancelled: a timer that no longer matches its stream's state does nothing.
    timers: BTreeSet<(Instant, ListingTimer)>,
}

impl Listing {
    /// The index of a stream seen before.
    pub(crate) fn find(&self, target: &StreamTarget) -> Option<StreamIx> {
        self.index.peek(target)
    }

    /// [`find`](Self::find) for a put: the stream of the last put is remembered (see [`StreamIndex`]).
    pub(crate) fn find_for_put(&mut self, target: &StreamTarget) -> Option<StreamIx> {
        self.index.get(target)
    }

    /// Adds a stream (listed at once); records are held for its first map until `hold_until`, if given.
    pub(crate) fn add(&mut self, target: StreamTarget, hold_until: Option<Instant>) -> StreamIx {
        let s = StreamIx(self.streams.len() as u32);
        self.index.insert(target.clone(), s);
        self.streams.push(StreamListing {
            target,
            state: ListingState::Due { next_token: None, shards: Vec::new() },
            backoff: LIST_SHARDS_MIN_BACKOFF,
            map: None,
            map_updated_at: None,
            shards: Vec::new(),
            slot_by_id: DetMap::default(),
            held: Vec::new(),
            hold_until,
            map_unavailable: false,
        });
        s
    }

    pub(crate) fn streams(&self) -> impl Iterator<Item = StreamIx> + use<> {
        (0..self.streams.len() as u32).map(StreamIx)
    }

    pub(crate) fn target(&self, s: StreamIx) -> &StreamTarget {
        &self.streams[s.index()].target
    }

    /// Shards of stream `s` ever listed (its slots are `0..count`).
    pub(crate) fn shard_count(&self, s: StreamIx) -> usize {
        self.streams[s.index()].shards.len()
    }

    /// The slots of `s`'s shards that its map no longer predicts to (closed by a reshard), ascending.
    pub(crate) fn closed_slots(&self, s: StreamIx) -> Vec<ShardSlot> {
        let stream = &self.streams[s.index()];
        let Some(map) = &stream.map else { return Vec::new() };
        let mut open = vec![false; stream.shards.len()];
        for slot in map.slots() {
            open[slot.index()] = true;
        }
        (0..stream.shards.len()).filter(|&index| !open[index]).map(|index| ShardSlot(index as u32)).collect()
    }

    /// The shard predicted for `hash_key`, if the stream has a map.
    pub(crate) fn predict(&self, s: StreamIx, hash_key: u128) -> Option<ShardSlot> {
        self.streams[s.index()].map.as_ref().and_then(|map| map.predict(hash_key))
    }

    /// Whether records of `s` with no predicted shard are held for the first map (if the policy holds).
    pub(crate) fn awaits_first_map(&self, s: StreamIx) -> bool {
        let stream = &self.streams[s.index()];
        stream.map.is_none() && !stream.map_unavailable
    }

    pub(crate) fn map_unavailable(&self, s: StreamIx) -> bool {
        self.streams[s.index()].map_unavailable
    }

    /// The id of the shard in `slot`.
    pub(crate) fn shard_id(&self, s: StreamIx, slot: ShardSlot) -> &ShardId {
        &self.streams[s.index()].shards[slot.index()].id
    }

    /// The slot of a shard id, if it was ever listed.
    pub(crate) fn slot_of(&self, s: StreamIx, id: &ShardId) -> Option<ShardSlot> {
        self.streams[s.index()].slot_by_id.get(id).copied()
    }

    /// Whether the shard `id` is known and holds `hash_key`.
    pub(crate) fn shard_holds(&self, s: StreamIx, id: &ShardId, hash_key: u128) -> bool {
        let stream = &self.streams[s.index()];
        self.slot_of(s, id).is_some_and(|slot| {
            let shard = &stream.shards[slot.index()];
            (shard.starting_hash_key..=shard.ending_hash_key).contains(&hash_key)
        })
    }

    /// Holds a record until the stream's first map arrives, or the hold gives up, or its TTL passes.
    pub(crate) fn hold(&mut self, s: StreamIx, record: AcceptedRecord) {
        let stream = &mut self.streams[s.index()];
        if let Some(expiration) = record.expiration {
            self.timers.insert((expiration, ListingTimer::Held(s)));
        }
        // Armed by the records that wait (the same timer each time), so an idle producer sleeps.
        if let Some(until) = stream.hold_until {
            self.timers.insert((until, ListingTimer::MapWait(s)));
        }
        stream.held.push(record);
    }

    /// A flush: held records are due the moment the map arrives (or the hold gives up).
    pub(crate) fn flush_held(&mut self, now: Instant, s: StreamIx) {
        for record in &mut self.streams[s.index()].held {
            record.deadline = crate::time::earliest(Some(now), record.expiration);
        }
    }

    /// Gives up holding for the first shard map: returns the held records, to go out aggregated by hash key
    /// (as later ones will until a listing succeeds). `None` if the stream already gave up.
    pub(crate) fn give_up_holding(&mut self, s: StreamIx) -> Option<Vec<AcceptedRecord>> {
        let stream = &mut self.streams[s.index()];
        stream.hold_until = None;
        if stream.map_unavailable {
            return None;
        }
        stream.map_unavailable = true;
        Some(std::mem::take(&mut stream.held))
    }

    /// The next `ListShards` page to send, if a stream needs one.
    pub(crate) fn next_request(&mut self) -> Option<(StreamIx, ListShardsRequest)> {
        let index =
            self.streams.iter().position(|stream| matches!(stream.state, ListingState::Due { .. }))?;
        let stream = &mut self.streams[index];
        let ListingState::Due { next_token, shards } =
            std::mem::replace(&mut stream.state, ListingState::InFlight { shards: Vec::new() })
        else {
            return None;
        };
        stream.state = ListingState::InFlight { shards };
        let request = ListShardsRequest {
            stream: stream.target.clone(),
            only_open_shards: next_token.is_none(),
            next_token,
            max_results: LIST_SHARDS_PAGE,
        };
        Some((StreamIx(index as u32), request))
    }

    /// The response to a `ListShards` page of stream `s`.
    pub(crate) fn on_response(
        &mut self,
        now: Instant,
        s: StreamIx,
        result: Result<ListShardsOutput, RequestError>,
    ) -> Listed {
        let stream = &mut self.streams[s.index()];
        let ListingState::InFlight { shards: mut listing } =
            std::mem::replace(&mut stream.state, ListingState::Idle)
        else {
            return Listed::Nothing;
        };
        let (complete, refused) = match result {
            Ok(page) => {
                listing.extend(page.shards);
                if let Some(token) = page.next_token {
                    stream.state = ListingState::Due { next_token: Some(token), shards: listing };
                    return Listed::Nothing;
                }
                (covers_key_space(&listing.iter().filter(|shard| shard.is_open).collect::<Vec<_>>()), None)
            }
            // A refusal will not heal by waiting (a role allowed only PutRecords, a missing stream): stop
            // holding now; PutRecords then tells each record what is wrong.
            Err(error) => {
                let refused =
                    matches!(error.kind, RequestErrorKind::Fatal | RequestErrorKind::StreamNotFound)
                        && stream.map.is_none()
                        && stream.hold_until.is_some();
                (false, refused.then(|| format!("ListShards failed: {error}")))
            }
        };
        if !complete {
            // Failed, or caught mid-reshard with gaps: list again after a backoff.
            let until = now + stream.backoff;
            stream.state = ListingState::Waiting { until };
            stream.backoff = stream.backoff.mul_f64(LIST_SHARDS_BACKOFF_GROWTH).min(LIST_SHARDS_MAX_BACKOFF);
            self.timers.insert((until, ListingTimer::Retry(s)));
            return Listed::Failed { refused };
        }
        let first_map = stream.map.is_none();
        let open_shards = self.install_map(now, s, listing);
        let held = std::mem::take(&mut self.streams[s.index()].held);
        Listed::Installed { open_shards, first_map, held }
    }

    /// Installs a complete listing: updates or adds every shard, and predicts over the open ones. Returns
    /// the number of open shards.
    fn install_map(&mut self, now: Instant, s: StreamIx, listing: Vec<ShardDescription>) -> usize {
        let stream = &mut self.streams[s.index()];
        let mut ends = Vec::new();
        for shard in listing {
            let slot = match stream.slot_by_id.get(&shard.shard_id) {
                Some(&slot) => slot,
                None => {
                    let slot = ShardSlot(stream.shards.len() as u32);
                    stream.slot_by_id.insert(shard.shard_id.clone(), slot);
                    stream.shards.push(Shard {
                        id: shard.shard_id.clone(),
                        starting_hash_key: shard.starting_hash_key,
                        ending_hash_key: shard.ending_hash_key,
                    });
                    slot
                }
            };
            if shard.is_open {
                ends.push((shard.ending_hash_key, slot));
            }
        }
        let open = ends.len();
        stream.map = Some(ShardMap::new(ends));
        stream.map_unavailable = false;
        stream.map_updated_at = Some(now);
        stream.state = ListingState::Idle;
        stream.backoff = LIST_SHARDS_MIN_BACKOFF;
        open
    }

    /// Lists the shards again, unless a listing is already under way or the map is newer than the evidence
    /// (a request that started before the last refresh says nothing about the current map).
    pub(crate) fn invalidate(&mut self, s: StreamIx, request_started: Instant) {
        let stream = &mut self.streams[s.index()];
        if matches!(stream.state, ListingState::Idle)
            && stream.map_updated_at.is_none_or(|at| request_started >= at)
        {
            stream.state = ListingState::Due { next_token: None, shards: Vec::new() };
        }
    }

    /// The earliest timer, stale or not.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// Fires the earliest timer. A retry that is due makes the listing due; the other timers are the
    /// producer's to act on ([`TimerFired`]).
    pub(crate) fn fire_timer(&mut self, now: Instant) -> Option<TimerFired> {
        let (_, timer) = self.timers.pop_first()?;
        match timer {
            ListingTimer::Retry(s) => {
                let stream = &mut self.streams[s.index()];
                if matches!(stream.state, ListingState::Waiting { until } if until <= now) {
                    stream.state = ListingState::Due { next_token: None, shards: Vec::new() };
                }
                None
            }
            ListingTimer::MapWait(s) => {
                let stream = &self.streams[s.index()];
                let gave_out = stream.map.is_none() && stream.hold_until.is_some_and(|until| until <= now);
                gave_out.then_some(TimerFired::HoldTimedOut(s))
            }
            ListingTimer::Held(s) => {
                let held = std::mem::take(&mut self.streams[s.index()].held);
                let (expired, kept): (Vec<_>, Vec<_>) =
                    held.into_iter().partition(|record| has_passed(record.expiration, now));
                self.streams[s.index()].held = kept;
                Some(TimerFired::HeldExpired(s, expired))
            }
        }
    }
}

/// A listing timer the producer acts on.
#[must_use]
#[derive(Debug)]
pub(crate) enum TimerFired {
    /// Holding for stream's first map ran out of time.
    HoldTimedOut(StreamIx),
    /// These held records' TTL passed.
    HeldExpired(StreamIx, Vec<AcceptedRecord>),
}

impl Names for Listing {
    fn stream(&self, s: StreamIx) -> &StreamTarget {
        self.target(s)
    }

    fn shard(&self, s: StreamIx, slot: ShardSlot) -> &ShardId {
        self.shard_id(s, slot)
    }
}
