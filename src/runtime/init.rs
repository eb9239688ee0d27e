//! Weight initializers with Keras' defaults, drawn from a seed with a portable generator.
//!
//! Input: an [`Initializer`], a shape and a `u64` seed. Output: an `f32` array of that shape.
//! Randomness is ChaCha8 (`rand_chacha`) seeded with `seed_from_u64`; uniform and normal
//! samples are computed here from the raw `u64` stream (53-bit uniforms, Box–Muller normals),
//! so the same seed gives the same weights on every platform and `rand` version.
//!
//! Fans follow Keras: for rank ≥ 3 (conv kernels `[kh, kw, in, out]`) the receptive field
//! size multiplies both `fan_in = in·rf` and `fan_out = out·rf`. Orthogonal: a normal matrix of
//! shape `[prod(shape[..-1]), shape[-1]]` (transposed if it has fewer rows than columns) goes
//! through modified Gram–Schmidt in f64, which equals QR with `sign(diag R)` made positive.

use ndarray::{ArrayD, IxDyn};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use thiserror::Error;

/// A weight initializer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Initializer {
    Zeros,
    Ones,
    /// `U(−l, l)`, `l = √(6 / (fan_in + fan_out))` (Keras' default for kernels).
    GlorotUniform,
    /// Orthogonal rows or columns, times `gain` (Keras' default for recurrent kernels, gain 1).
    Orthogonal {
        gain: f32,
    },
    /// `U(low, high)`; Keras' embedding default is `(−0.05, 0.05)`.
    Uniform {
        low: f32,
        high: f32,
    },
    /// LSTM bias `[4u]`: zeros with ones on the forget block `[u, 2u)`.
    UnitForgetBias,
}

/// The runtime initializer of an IR parameter's [`crate::ir::Init`] (one mapping for fresh
/// weights and the trainer's parameter store).
impl From<crate::ir::Init> for Initializer {
    fn from(init: crate::ir::Init) -> Self {
        use crate::ir::Init;
        match init {
            Init::GlorotUniform => Initializer::GlorotUniform,
            Init::Zeros => Initializer::Zeros,
            Init::Ones => Initializer::Ones,
            Init::Orthogonal => Initializer::Orthogonal { gain: 1.0 },
            Init::Uniform { limit } => Initializer::Uniform {
                low: -limit,
                high: limit,
            },
            Init::UnitForgetBias => Initializer::UnitForgetBias,
        }
    }
}

/// Why an initializer could not produce the requested tensor.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InitError {
    #[error("initializer {init}: unsupported shape {shape:?}: {reason}")]
    Shape {
        init: &'static str,
        shape: Vec<usize>,
        reason: &'static str,
    },
    #[error("initializer shape {0:?} is too large")]
    Overflow(Vec<usize>),
}

/// The Keras embedding initializer bounds.
pub const EMBEDDING_UNIFORM: Initializer = Initializer::Uniform {
    low: -0.05,
    high: 0.05,
};

/// A uniform sample in `[0, 1)` with 53 random bits.
fn uniform01(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal sample (Box–Muller, one of the pair).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - uniform01(rng); // in (0, 1]
    let u2 = uniform01(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Keras' `(fan_in, fan_out)` for a weight shape.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [i, o] => (*i, *o),
        [rf @ .., i, o] => {
            let receptive: usize = rf.iter().product();
            (i * receptive, o * receptive)
        }
    }
}

/// Builds a tensor of `shape` with `init`, deterministically from `seed`.
pub fn initialize(init: Initializer, shape: &[usize], seed: u64) -> Result<ArrayD<f32>, InitError> {
    let len = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| InitError::Overflow(shape.to_vec()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data: Vec<f32> = match init {
        Initializer::Zeros => vec![0.0; len],
        Initializer::Ones => vec![1.0; len],
        Initializer::GlorotUniform => {
            let (fi, fo) = fans(shape);
            let limit = (6.0 / (fi + fo).max(1) as f64).sqrt();
            (0..len)
                .map(|_| ((2.0 * uniform01(&mut rng) - 1.0) * limit) as f32)
                .collect()
        }
        Initializer::Uniform { low, high } => {
            let (lo, hi) = (f64::from(low), f64::from(high));
            (0..len)
                .map(|_| (lo + (hi - lo) * uniform01(&mut rng)) as f32)
                .collect()
        }
        Initializer::UnitForgetBias => {
            let [n] = shape else {
                return Err(InitError::Shape {
                    init: "unit_forget_bias",
                    shape: shape.to_vec(),
                    reason: "expected rank 1",
                });
            };
            if n % 4 != 0 {
                return Err(InitError::Shape {
                    init: "unit_forget_bias",
                    shape: shape.to_vec(),
                    reason: "length must be 4·units",
                });
            }
            let u = n / 4;
            (0..*n)
                .map(|i| if (u..2 * u).contains(&i) { 1.0 } else { 0.0 })
                .collect()
        }
        Initializer::Orthogonal { gain } => orthogonal(shape, len, f64::from(gain), &mut rng)?,
    };
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|_| InitError::Overflow(shape.to_vec()))
}

/// Orthonormal rows or columns of the flattened `[rows, cols]` matrix, scaled by `gain`.
fn orthogonal(
    shape: &[usize],
    len: usize,
    gain: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f32>, InitError> {
    let Some((&cols, _)) = shape.split_last() else {
        return Err(InitError::Shape {
            init: "orthogonal",
            shape: shape.to_vec(),
            reason: "needs rank ≥ 1",
        });
    };
    if len == 0 {
        return Ok(Vec::new());
    }
    let rows = len / cols;
    // Work on a tall matrix (r ≥ c) stored column by column: columns get orthonormalized.
    let (r, c) = if rows < cols {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let mut q: Vec<Vec<f64>> = (0..c)
        .map(|_| (0..r).map(|_| standard_normal(rng)).collect())
        .collect();
    for j in 0..c {
        let (done, rest) = q.split_at_mut(j);
        let Some(col) = rest.first_mut() else { break };
        for prev in done.iter() {
            let dot: f64 = prev.iter().zip(col.iter()).map(|(a, b)| a * b).sum();
            col.iter_mut().zip(prev).for_each(|(v, p)| *v -= dot * p);
        }
        let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            for v in col.iter_mut() {
                *v /= norm;
            }
        }
    }
    // Tall r×c matrix Q[i][j] = q[j][i]; the output is Q (rows ≥ cols) or Qᵀ (rows < cols).
    let mut out = vec![0f32; len];
    for (j, col) in q.iter().enumerate() {
        for (i, &v) in col.iter().enumerate() {
            let at = if rows < cols {
                j * cols + i
            } else {
                i * cols + j
            };
            out[at] = (gain * v) as f32;
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact constants (0, 1) are compared exactly on purpose
mod tests {
    use super::{fans, initialize, Initializer, EMBEDDING_UNIFORM};

    #[test]
    fn fans_follow_keras_for_dense_and_conv() {
        assert_eq!(fans(&[3, 3, 16, 32]), (144, 288));
        assert_eq!(fans(&[20, 10]), (20, 10));
        assert_eq!(fans(&[7]), (7, 7));
    }

    #[test]
    fn glorot_uniform_stays_in_bounds_with_the_right_variance() {
        let w = initialize(Initializer::GlorotUniform, &[3, 3, 32, 64], 1).unwrap();
        let limit = (6.0f64 / (288.0 + 576.0)).sqrt();
        assert!(w.iter().all(|&v| f64::from(v).abs() <= limit));
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = w
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.02 * limit, "mean {mean}");
        let want = limit * limit / 3.0;
        assert!((var - want).abs() < 0.03 * want, "var {var} want {want}");
    }

    #[test]
    fn same_seed_same_weights_different_seed_different_weights() {
        let a = initialize(Initializer::GlorotUniform, &[10, 10], 5).unwrap();
        assert_eq!(
            a,
            initialize(Initializer::GlorotUniform, &[10, 10], 5).unwrap()
        );
        assert_ne!(
            a,
            initialize(Initializer::GlorotUniform, &[10, 10], 6).unwrap()
        );
        let o = initialize(Initializer::Orthogonal { gain: 1.0 }, &[4, 12], 5).unwrap();
        assert_eq!(
            o,
            initialize(Initializer::Orthogonal { gain: 1.0 }, &[4, 12], 5).unwrap()
        );
    }

    #[test]
    fn orthogonal_rows_or_columns_are_orthonormal() {
        for shape in [[8usize, 32], [32, 8], [16, 16]] {
            let q = initialize(Initializer::Orthogonal { gain: 1.0 }, &shape, 3).unwrap();
            let q = q
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap()
                .mapv(f64::from);
            let gram = if shape[0] < shape[1] {
                q.dot(&q.t())
            } else {
                q.t().dot(&q)
            };
            for ((i, j), &v) in gram.indexed_iter() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-5, "{shape:?} gram[{i},{j}] = {v}");
            }
        }
        let scaled = initialize(Initializer::Orthogonal { gain: 2.0 }, &[3, 3], 3).unwrap();
        let norm: f32 = scaled.iter().take(3).map(|v| v * v).sum();
        assert!((norm - 4.0).abs() < 1e-4);
    }

    #[test]
    fn constant_bias_and_embedding_initializers() {
        let b = initialize(Initializer::UnitForgetBias, &[8], 0).unwrap();
        assert_eq!(
            b.as_slice().unwrap(),
            &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert!(initialize(Initializer::UnitForgetBias, &[6], 0).is_err());
        assert!(initialize(Initializer::Zeros, &[2, 3], 0)
            .unwrap()
            .iter()
            .all(|&v| v == 0.0));
        assert!(initialize(Initializer::Ones, &[2, 3], 0)
            .unwrap()
            .iter()
            .all(|&v| v == 1.0));
        let e = initialize(EMBEDDING_UNIFORM, &[100, 50], 9).unwrap();
        assert!(e.iter().all(|&v| (-0.05..0.05).contains(&v)));
        let mean = e.iter().map(|&v| f64::from(v)).sum::<f64>() / e.len() as f64;
        assert!(mean.abs() < 0.002, "mean {mean}");
        assert!(initialize(Initializer::Zeros, &[usize::MAX, 2], 0).is_err());
    }
}
