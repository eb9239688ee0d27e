//! Tests of the kernels: hand-computed cases, numpy fixtures (tests/fixtures/kernels) and
//! central finite differences for every backward. Helpers shared by the test files live here.

// Exact float comparisons are intended where the expected value is exactly representable.
#![allow(clippy::float_cmp)]

mod activations;
mod conv_sliced;
mod crop;
mod crop_train;
mod depthwise;
mod direct;
mod fixtures;
mod grads;
mod grads_rnn;
mod hand;
mod matvec;
mod pool_paths;
mod rnn_infer;
mod rnn_options;
mod rnn_tokens;
mod sliced;
mod train_slices;

use ndarray::{ArrayD, IxDyn};

/// `steps + 1` points evenly covering `[-lim, lim]`, then tiny magnitudes of both signs and the
/// exact zero: the inputs of the activation accuracy tests.
pub(super) fn sweep(lim: f32, steps: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..=steps)
        .map(|i| -lim + 2.0 * lim * i as f32 / steps as f32)
        .collect();
    for e in -40..0 {
        let t = 2f32.powi(e) * 1.234_567;
        v.push(t);
        v.push(-t);
    }
    v.push(0.0);
    v
}

/// Deterministic test data (xorshift64*), uniform in `[-scale, scale)`.
pub(super) fn data(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let v = (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32;
            (2.0 * v - 1.0) * scale
        })
        .collect()
}

pub(super) fn arr(shape: &[usize], v: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

pub(super) fn assert_close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{name}[{i}]: got {g}, want {w}"
        );
    }
}

/// Compares analytic gradients with central differences of `loss = Σ weights ⊙ f(inputs)`.
///
/// `f` maps the inputs to the forward output; the analytic gradients must have been computed
/// by the backward kernel with `dy = weights`.
pub(super) fn check_gradients(
    name: &str,
    inputs: &[Vec<f32>],
    weights: &[f32],
    analytic: &[Vec<f32>],
    f: impl Fn(&[Vec<f32>]) -> Vec<f32>,
) {
    let eps = 1e-2f32;
    let loss = |ins: &[Vec<f32>]| -> f64 {
        f(ins)
            .iter()
            .zip(weights)
            .map(|(&y, &w)| f64::from(y) * f64::from(w))
            .sum()
    };
    let mut ins = inputs.to_vec();
    for (which, grad) in analytic.iter().enumerate() {
        assert_eq!(
            grad.len(),
            inputs[which].len(),
            "{name}: gradient {which} length"
        );
        for j in 0..grad.len() {
            let orig = ins[which][j];
            ins[which][j] = orig + eps;
            let up = loss(&ins);
            ins[which][j] = orig - eps;
            let down = loss(&ins);
            ins[which][j] = orig;
            let numeric = (up - down) / (2.0 * f64::from(eps));
            let a = f64::from(grad[j]);
            assert!(
                (numeric - a).abs() <= 3e-3 * (1.0 + a.abs()),
                "{name}: d input {which} [{j}]: analytic {a}, numeric {numeric}"
            );
        }
    }
}
