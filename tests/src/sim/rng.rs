//! The simulation's randomness: one master seed, split into independent streams, all drawn from the
//! project's one generator.

pub use kpl_core::SplitMix64;

/// An independent seed for sub-stream `stream` of `seed` (workload, backend, producer, ...).
pub fn derive(seed: u64, stream: u64) -> u64 {
    SplitMix64::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}
