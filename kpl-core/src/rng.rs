//! The producer's only source of randomness: a generator seeded at construction. Public so that the mock
//! backend, the simulations and the tools draw from the same, seedable generator.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and plenty for jitter, fault dice and benchmark keys;
/// not for anything secret. The same seed gives the same sequence.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next 128 random bits.
    pub fn next_u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// Uniform in `0..bound` (0 for a `bound` of 0), by multiply-high: the bias is below 2^-64 × `bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `0..=max`.
    pub fn below_or_equal(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(bound) => self.below(bound),
            None => self.next_u64(),
        }
    }

    /// Uniform in `[0, 1)`, from 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`: never for 0.0, always for 1.0. Draws one number whatever `p` is, so that
    /// changing a probability does not shift the draws that follow.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounds_hold() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            let x = a.below_or_equal(10);
            assert_eq!(x, b.below_or_equal(10));
            assert!(x <= 10);
            assert!(a.below(3) < 3 && b.below(3) < 3);
            assert!((0.0..1.0).contains(&a.unit()) && (0.0..1.0).contains(&b.unit()));
        }
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
        assert_eq!(SplitMix64::new(3).below_or_equal(0), 0);
        assert_eq!(SplitMix64::new(3).below(0), 0);
    }

    #[test]
    fn chance_follows_the_probability() {
        let mut rng = SplitMix64::new(5);
        assert!((0..1000).all(|_| !rng.chance(0.0)));
        assert!((0..1000).all(|_| rng.chance(1.0)));
        let hits = (0..100_000).filter(|_| rng.chance(0.25)).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
    }
}
