//! A small deterministic pseudo-random generator for test data and
//! benchmark workloads: xorshift64* (Vigna, "An experimental exploration of
//! Marsaglia's xorshift generators", 2016). The same seed gives the same
//! sequence on every run and machine, so a failing random test reproduces
//! from its seed and a benchmark replays the same packets. Not for anything
//! that needs unpredictability.
//!
//! It lives in the compiler crate because every crate of the workspace
//! (and the tests and benchmarks) depends on it and none needs a random
//! crate otherwise.

/// xorshift64*: 64 bits of state, never zero.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose state is `seed` (zero, a fixed point of xorshift,
    /// is replaced by a fixed nonzero constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 bits.
    #[allow(clippy::should_implement_trait)] // an endless generator, not an iterator
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An index in `0..n` (`n > 0`).
    pub fn index(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`%.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of the non-empty `xs`.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.index(xs.len())]
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn sequence_is_xorshift64_star() {
        // The first outputs for state 1, worked by hand from the definition.
        let mut r = Rng::new(1);
        let mut s: u64 = 1;
        for _ in 0..5 {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            assert_eq!(r.next(), s.wrapping_mul(0x2545_F491_4F6C_DD1D));
        }
        assert_eq!(Rng::new(1).next(), 0x47E4_CE4B_896C_DD1D);
        // Zero is not a dead state.
        assert_ne!(Rng::new(0).next(), 0);
    }

    #[test]
    fn helpers_stay_in_range() {
        let mut r = Rng::new(7);
        for _ in 0..1000 {
            assert!(r.below(10) < 10);
            assert!(r.index(3) < 3);
            assert!([4, 5].contains(&r.pick(&[4, 5])));
        }
        assert!(!r.chance(0) && r.chance(100));
        assert_eq!(r.bytes(17).len(), 17);
    }
}
