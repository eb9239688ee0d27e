//! Seeded randomness: ChaCha8 streams keyed by (seed, purpose, epoch) with one stream per
//! sample, and our own uniform and normal sampling from the raw 64-bit words.
//!
//! Input: seeds and indices. Output: reproducible random numbers. Invariant: the numbers for a
//! sample depend only on (seed, purpose, epoch, sample index), never on thread count or order.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// What a stream is used for, so that different uses of one seed do not share numbers.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    Generate = 1,
    Split = 2,
    Shuffle = 3,
    Augment = 4,
}

/// A random stream.
pub struct Stream {
    rng: ChaCha8Rng,
    /// A second normal deviate left over from Box–Muller.
    spare: Option<f64>,
}

impl Stream {
    /// The stream for `(seed, purpose, epoch)` and sample `index`.
    pub fn new(seed: u64, purpose: Purpose, epoch: u64, index: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&(purpose as u64).to_le_bytes());
        key[16..24].copy_from_slice(&epoch.to_le_bytes());
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(index);
        Self { rng, spare: None }
    }

    /// A raw 64-bit word.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `[0, n)` (`n >= 1`), by rejection so there is no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % n) - 1;
        loop {
            let v = self.next_u64();
            if v <= zone {
                return v % n;
            }
        }
    }

    /// A standard normal deviate (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // 1 - u is in (0, 1], so the log is finite.
        let r = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
        let theta = std::f64::consts::TAU * self.uniform();
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }

    /// A Fisher–Yates permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = {
            let mut s = Stream::new(7, Purpose::Augment, 2, 5);
            (0..4).map(|_| s.next_u64()).collect()
        };
        let mut s = Stream::new(7, Purpose::Augment, 2, 5);
        assert_eq!(a, (0..4).map(|_| s.next_u64()).collect::<Vec<_>>());
        let mut other = Stream::new(7, Purpose::Augment, 2, 6);
        assert_ne!(a[0], other.next_u64());
        let mut other = Stream::new(7, Purpose::Shuffle, 2, 5);
        assert_ne!(a[0], other.next_u64());
    }

    #[test]
    fn uniform_and_normal_have_the_right_moments() {
        let mut s = Stream::new(1, Purpose::Generate, 0, 0);
        let n = 200_000_usize;
        let u: Vec<f64> = (0..n).map(|_| s.uniform()).collect();
        let mean = u.iter().sum::<f64>() / n as f64;
        let var = u.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "{mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.002, "{var}");
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
        let z: Vec<f64> = (0..n).map(|_| s.normal()).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        let mut p = s.permutation(50);
        p.sort_unstable();
        assert_eq!(p, (0..50).collect::<Vec<_>>());
    }
}
