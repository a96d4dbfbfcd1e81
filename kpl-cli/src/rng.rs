//! Random keys for benchmarks and `produce`: the project's one generator (`kpl_core::SplitMix64`), seeded
//! from the command line or, for random partition keys, afresh each run.

use std::hash::{BuildHasher, Hasher};

pub use kpl_core::SplitMix64 as Rng;

/// A seed that differs from run to run: the standard library's per-process random hasher keys.
pub fn entropy_seed() -> u64 {
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}
