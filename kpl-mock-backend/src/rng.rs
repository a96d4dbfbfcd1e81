//! The mock's only source of randomness: a generator seeded at construction.

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and plenty for fault dice and jitter.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
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

    /// True with probability `p`: never for 0.0, always for 1.0. Draws one number whatever `p` is, so that
    /// changing a probability does not shift the draws that follow.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        // 53 random bits: uniform in [0, 1).
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }

    /// Uniform in `0..=max`.
    pub(crate) fn below_or_equal(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            // Multiply-shift: the bias is below 2^-64 × max, irrelevant here.
            Some(bound) => ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_and_bounds_hold() {
        let mut a = SplitMix64::new(9);
        let mut b = SplitMix64::new(9);
        for _ in 0..1000 {
            let x = a.below_or_equal(7);
            assert_eq!(x, b.below_or_equal(7));
            assert!(x <= 7);
            assert!(!a.chance(0.0));
            assert!(a.chance(1.0));
            b.next_u64();
            b.next_u64();
        }
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }

    #[test]
    fn chance_follows_the_probability() {
        let mut rng = SplitMix64::new(3);
        let hits = (0..100_000).filter(|_| rng.chance(0.25)).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
    }
}
