//! Seeded workloads: what the application does to the producer, and when.

use std::time::{Duration, Instant};

use kpl_core::{StreamTarget, UserRecord};

use super::rng::SplitMix64;

/// The shape of a workload, drawn from the seed.
#[derive(Debug, Clone)]
pub struct WorkloadParams {
    /// User records to put in all.
    pub records: usize,
    /// Mean gap between puts.
    pub mean_gap: Duration,
    /// Distinct partition keys.
    pub key_space: u64,
    /// Share of records that use the one hot key.
    pub hot_key_share: f64,
    /// Share of records with an explicit hash key.
    pub explicit_hash_key_share: f64,
    /// Largest data size.
    pub max_data: usize,
    /// Chance that a put starts a burst of puts at the same instant.
    pub burst_chance: f64,
    /// Chance of a flush after a put.
    pub flush_chance: f64,
    /// Reshards (a split or a merge) during the run.
    pub reshards: usize,
}

impl WorkloadParams {
    /// Swarm testing: every seed draws its own shape, some gentle, some hostile.
    pub fn draw(rng: &mut SplitMix64) -> Self {
        let key_bound = if rng.chance(0.3) { 5 } else { 5000 };
        Self {
            records: 50 + rng.below(1500) as usize,
            mean_gap: Duration::from_micros(rng.below(5000)),
            key_space: 1 + rng.below(key_bound),
            hot_key_share: if rng.chance(0.3) { rng.unit() * 0.8 } else { 0.0 },
            explicit_hash_key_share: if rng.chance(0.3) { rng.unit() * 0.5 } else { 0.0 },
            max_data: [16, 300, 5000, 60_000][rng.below(4) as usize],
            burst_chance: rng.unit() * 0.05,
            flush_chance: if rng.chance(0.3) { rng.unit() * 0.02 } else { 0.0 },
            reshards: if rng.chance(0.3) { 1 + rng.below(2) as usize } else { 0 },
        }
    }
}

/// Something the application does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Put this record.
    Put(UserRecord),
    /// Flush everything.
    Flush,
    /// Reshard: split (`true`) or merge (`false`) around a point of the key space, given as a fraction.
    Reshard {
        /// Split rather than merge.
        split: bool,
        /// Where, as a fraction of the key space.
        at: f64,
    },
    /// Close the producer: the last action.
    Close,
}

/// What drives a simulation: actions over virtual time.
pub trait Actions {
    /// When the next action is due; `None` once closed.
    fn next_at(&self) -> Option<Instant>;
    /// The actions due at `now`.
    fn take_due(&mut self, now: Instant) -> Vec<Action>;
    /// How many puts it makes in all (bounds the steps a run may take).
    fn planned_puts(&self) -> usize;
}

/// A seeded stream of actions over virtual time.
#[derive(Debug)]
pub struct Workload {
    rng: SplitMix64,
    params: WorkloadParams,
    stream: StreamTarget,
    next_at: Option<Instant>,
    put: usize,
    /// Puts at which a reshard happens.
    reshard_at: Vec<usize>,
}

impl Workload {
    /// A workload starting at `start`.
    pub fn new(seed: u64, params: WorkloadParams, stream: StreamTarget, start: Instant) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut reshard_at: Vec<usize> =
            (0..params.reshards).map(|_| rng.below(params.records as u64) as usize).collect();
        reshard_at.sort_unstable();
        Self { rng, params, stream, next_at: Some(start), put: 0, reshard_at }
    }

    fn record(&mut self) -> UserRecord {
        let key = if self.rng.chance(self.params.hot_key_share) {
            "hot-key".to_owned()
        } else {
            format!("key-{:08}-{}", self.rng.below(self.params.key_space), "x".repeat(16))
        };
        // The data starts with the put's ordinal, so every copy in the stream can be traced to its record.
        let size = 8 + self.rng.below(self.params.max_data as u64) as usize;
        let mut data = vec![(self.put % 251) as u8; size];
        data[..8].copy_from_slice(&(self.put as u64).to_be_bytes());
        let mut record = UserRecord::new(self.stream.clone(), key, data);
        if self.rng.chance(self.params.explicit_hash_key_share) {
            let explicit = u128::from(self.rng.next_u64()) << 64 | u128::from(self.rng.next_u64());
            record = record.with_explicit_hash_key(explicit.to_string());
        }
        record
    }
}

impl Actions for Workload {
    fn next_at(&self) -> Option<Instant> {
        self.next_at
    }

    fn planned_puts(&self) -> usize {
        self.params.records
    }

    fn take_due(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(at) = self.next_at.filter(|&at| at <= now) {
            if self.put == self.params.records {
                actions.push(Action::Close);
                self.next_at = None;
                break;
            }
            if self.reshard_at.first() == Some(&self.put) {
                self.reshard_at.remove(0);
                actions.push(Action::Reshard { split: self.rng.chance(0.6), at: self.rng.unit() });
            }
            actions.push(Action::Put(self.record()));
            self.put += 1;
            if self.rng.chance(self.params.flush_chance) {
                actions.push(Action::Flush);
            }
            let burst = self.rng.chance(self.params.burst_chance);
            let gap = if burst {
                Duration::ZERO
            } else {
                // Exponential gaps: a Poisson arrival process at the mean rate.
                let u = self.rng.unit().max(f64::MIN_POSITIVE);
                self.params.mean_gap.mul_f64(-u.ln())
            };
            self.next_at = Some(at + gap);
        }
        actions
    }
}

/// The put ordinal a record's data starts with.
pub fn ordinal(data: &[u8]) -> Option<u64> {
    data.get(..8).and_then(|prefix| prefix.try_into().ok()).map(u64::from_be_bytes)
}
