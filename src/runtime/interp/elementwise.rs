//! Element-wise steps computed in place on a flat buffer: activations (also the activation
//! fused into a conv2d or dense step), inference batch norm, affine, add.
//!
//! Input: a contiguous `[rows, channels]` slice (channels = the value's last axis). Output: the
//! same slice overwritten. These loops are the interpreter's own so that a step can overwrite its
//! input (the plan's in-place steps) without a scratch copy; the formulas are those of
//! `runtime::kernels` (same operations in the same order), so a fused activation gives the same
//! bits as a separate activation step.

use crate::ir::Activation;
use crate::runtime::kernels::activation::{self as k, erf};
use crate::runtime::kernels::fastmath;

/// Applies `act` to `data`, whose last axis has `channels` elements (softmax works per row).
pub fn activation_in_place(act: Activation, data: &mut [f32], channels: usize) {
    match act {
        Activation::Linear => {}
        Activation::Relu => data.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::LeakyRelu { alpha } => data.iter_mut().for_each(|v| {
            if *v <= 0.0 {
                *v *= alpha;
            }
        }),
        Activation::Sigmoid => fastmath::sigmoid_in_place(data),
        Activation::Tanh => fastmath::tanh_in_place(data),
        Activation::Gelu => data.iter_mut().for_each(|v| {
            let x = f64::from(*v);
            *v = (0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2))) as f32;
        }),
        Activation::Swish => data.iter_mut().for_each(|v| *v = k::swish(*v)),
        Activation::Elu { alpha } => data.iter_mut().for_each(|v| *v = k::elu(*v, alpha)),
        Activation::Selu => data.iter_mut().for_each(|v| *v = k::selu(*v)),
        Activation::Softplus => data.iter_mut().for_each(|v| *v = k::softplus(*v)),
        Activation::HardSigmoid => data.iter_mut().for_each(|v| *v = k::hard_sigmoid(*v)),
        Activation::Relu6 => data.iter_mut().for_each(|v| *v = k::relu6(*v)),
        Activation::Mish => data.iter_mut().for_each(|v| *v = k::mish(*v)),
        Activation::Softmax => {
            if channels == 0 {
                return;
            }
            for row in data.chunks_exact_mut(channels) {
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let mut sum = 0.0f32;
                for v in row.iter_mut() {
                    *v = fastmath::exp(*v - max);
                    sum += *v;
                }
                for v in row.iter_mut() {
                    *v /= sum;
                }
            }
        }
    }
}

/// `y = γ (x − mean) / √(var + ε) + β` per channel, in place.
pub fn batch_norm_in_place(
    data: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f32,
) {
    let c = gamma.len();
    if c == 0 {
        return;
    }
    let inv: Vec<f32> = variance
        .iter()
        .map(|&v| 1.0 / (v + epsilon).sqrt())
        .collect();
    for row in data.chunks_exact_mut(c) {
        for (k, v) in row.iter_mut().enumerate() {
            *v = gamma[k] * (*v - mean[k]) * inv[k] + beta[k];
        }
    }
}

/// `y = x · scale + shift` per channel, in place.
pub fn affine_in_place(data: &mut [f32], scale: &[f32], shift: &[f32]) {
    let c = scale.len();
    if c == 0 {
        return;
    }
    for row in data.chunks_exact_mut(c) {
        for ((v, &s), &t) in row.iter_mut().zip(scale).zip(shift) {
            *v = *v * s + t;
        }
    }
}

/// `acc += x` element-wise; calls of at least 2^16 values split between the intra-op pool's
/// threads (`pool::zip_parts`; the same bits: each element is one addition).
pub fn add_in_place(acc: &mut [f32], x: &[f32]) {
    crate::runtime::pool::zip_parts(acc, x, |a, b| {
        a.iter_mut().zip(b).for_each(|(a, &b)| *a += b);
    });
}

/// Adds `bias` to every row of `channels` and applies `act` (one pass for the common relu).
pub fn bias_activation(data: &mut [f32], bias: Option<&[f32]>, act: Activation, channels: usize) {
    match (bias, act) {
        (Some(b), Activation::Relu) if !b.is_empty() => {
            for row in data.chunks_exact_mut(b.len()) {
                for (v, &bv) in row.iter_mut().zip(b) {
                    *v = (*v + bv).max(0.0);
                }
            }
        }
        (Some(b), _) if !b.is_empty() => {
            for row in data.chunks_exact_mut(b.len()) {
                for (v, &bv) in row.iter_mut().zip(b) {
                    *v += bv;
                }
            }
            activation_in_place(act, data, channels);
        }
        _ => activation_in_place(act, data, channels),
    }
}

#[cfg(test)]
mod tests {
    use super::add_in_place;
    use crate::runtime::pool::ZIP_SPLIT_MIN;

    /// Above the split size on 1, 2 and 3 threads: every element is `a + b` exactly, with
    /// parts of unequal length (the length is not a multiple of the thread count).
    #[test]
    fn a_large_add_split_between_threads_adds_every_element() {
        let n = ZIP_SPLIT_MIN + 7;
        let a: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.25).collect();
        let b: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut acc = a.clone();
            pool.install(|| add_in_place(&mut acc, &b));
            for (i, &got) in acc.iter().enumerate() {
                let want = (i % 1000) as f32 * 0.25 + ((i % 7) as f32 - 3.0);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "element {i} on {threads} threads"
                );
            }
        }
    }
}
