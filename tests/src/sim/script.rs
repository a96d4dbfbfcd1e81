//! Actions decoded from bytes: the fuzzer's way to drive a simulation.

use std::time::{Duration, Instant};

use kpl_core::{StreamTarget, UserRecord};

use super::workload::{Action, Actions};

/// A fixed list of timed actions, decoded from arbitrary bytes, two per action: what, and a parameter.
#[derive(Debug)]
pub struct Script {
    actions: Vec<(Instant, Action)>,
    next: usize,
    puts: usize,
}

impl Script {
    /// Decodes `bytes` into actions starting at `start`; always ends with a close.
    pub fn decode(bytes: &[u8], stream: &StreamTarget, start: Instant) -> Self {
        let mut at = start;
        let mut actions = Vec::new();
        let mut puts = 0usize;
        for pair in bytes.chunks_exact(2).take(2000) {
            let (kind, param) = (pair[0], pair[1]);
            match kind % 8 {
                0..=3 => {
                    // Data starts with the put's ordinal (see `workload::ordinal`); sizes from empty-ish to
                    // large, keys from a small space so they collide.
                    let size = 8 + usize::from(param) * [1, 4, 64, 400][usize::from(kind >> 6)];
                    let mut data = vec![param; size];
                    data[..8].copy_from_slice(&(puts as u64).to_be_bytes());
                    let mut record = UserRecord::new(stream.clone(), format!("key-{}", param % 16), data);
                    if kind & 0x20 != 0 {
                        let hash = u128::from(param) << 120 | u128::from(kind);
                        record = record.with_explicit_hash_key(hash.to_string());
                    }
                    actions.push((at, Action::Put(record)));
                    puts += 1;
                }
                4 | 5 => at += Duration::from_millis(u64::from(param) * u64::from(kind % 8 - 3) * 4),
                6 => actions.push((at, Action::Flush)),
                _ => actions
                    .push((at, Action::Reshard { split: param & 1 == 0, at: f64::from(param) / 256.0 })),
            }
        }
        actions.push((at, Action::Close));
        Self { actions, next: 0, puts }
    }
}

impl Actions for Script {
    fn next_at(&self) -> Option<Instant> {
        self.actions.get(self.next).map(|(at, _)| *at)
    }

    fn take_due(&mut self, now: Instant) -> Vec<Action> {
        let mut due = Vec::new();
        while let Some((at, action)) = self.actions.get(self.next) {
            if *at > now {
                break;
            }
            due.push(action.clone());
            self.next += 1;
        }
        due
    }

    fn planned_puts(&self) -> usize {
        self.puts
    }
}
