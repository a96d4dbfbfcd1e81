//! The producer's only source of randomness: a generator seeded at construction.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for jitter. Deterministic from its seed.
#[derive(Debug, Clone)]
pub(crate) struct SeededRng {
    state: u64,
}

impl SeededRng {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    pub(crate) fn below_or_equal(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            // Multiply-shift: the bias is below 2^-64 × max, irrelevant for jitter.
            Some(bound) => ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounds_hold() {
        let mut a = SeededRng::new(7);
        let mut b = SeededRng::new(7);
        for _ in 0..1000 {
            let x = a.below_or_equal(10);
            assert_eq!(x, b.below_or_equal(10));
            assert!(x <= 10);
        }
        assert_ne!(SeededRng::new(1).next_u64(), SeededRng::new(2).next_u64());
        assert_eq!(SeededRng::new(3).below_or_equal(0), 0);
    }
}
