//! Activations fused into conv2d and dense steps, applied in place on the step's output, and
//! their derivative taken from that output.
//!
//! Only the fusable activations (relu, leaky relu, sigmoid, tanh, elu, selu, softplus,
//! hard_sigmoid, relu6, and linear) occur here; each derivative is a function of the activated
//! output `y` alone: `relu'` is `y > 0` (0 at 0, as TensorFlow), `leaky_relu'` is 1 for `y > 0`
//! else `alpha` (needs `alpha > 0` so that the sign of `y` is the sign of the pre-activation),
//! `sigmoid' = y(1 − y)`, `tanh' = 1 − y²`, and the newer ones as
//! `kernels::activation::output_derivative` says (elu needs `alpha > 0`). So the
//! pre-activation need not be kept. The newer ones use the kernel's scalar functions, so a
//! fused step gives the bits of the separate activation step.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};

use crate::ir::Activation;
use crate::runtime::kernels::activation as kernel;
use crate::runtime::kernels::fastmath;
use crate::runtime::kernels::simd_train::vectorized;

/// Whether `act` can be applied in place and differentiated from its output.
pub(crate) fn supported(act: Activation) -> bool {
    match act {
        Activation::Linear | Activation::Relu | Activation::Sigmoid | Activation::Tanh => true,
        Activation::LeakyRelu { alpha } => alpha > 0.0,
        Activation::Elu { alpha } => alpha > 0.0,
        Activation::Selu | Activation::Softplus | Activation::HardSigmoid | Activation::Relu6 => {
            true
        }
        Activation::Gelu | Activation::Softmax | Activation::Swish | Activation::Mish => false,
    }
}

/// The kernel's scalar function of one of the other newer activations, with its parameter.
fn newer_forward(act: Activation) -> Option<(kernel::Scalar, f32)> {
    let k = super::context::activation(act, 1);
    Some((kernel::scalar(k)?, kernel::derivative_parameter(k)))
}

/// The kernel's derivative-from-output of one of the newer fusable activations, with its
/// parameter.
fn newer_derivative(act: Activation) -> Option<(kernel::FromOutput, f32)> {
    let k = super::context::activation(act, 1);
    Some((
        kernel::output_derivative(k)?,
        kernel::derivative_parameter(k),
    ))
}

/// `out[i] ← f(out[i])`; inlined so that the loop is compiled for the caller's SIMD width.
#[allow(clippy::inline_always)]
#[inline(always)]
fn map_in_place(out: &mut ArrayViewMutD<'_, f32>, f: impl Fn(f32) -> f32) {
    if let Some(s) = out.as_slice_mut() {
        for v in s.iter_mut() {
            *v = f(*v);
        }
    } else {
        out.mapv_inplace(f);
    }
}

/// `out = act(out)`, vectorized (see [`vectorized`]).
pub(crate) fn apply(act: Activation, out: &mut ArrayViewMutD<'_, f32>) {
    vectorized(
        #[inline(always)]
        || match act {
            Activation::Relu => map_in_place(out, |v| v.max(0.0)),
            Activation::LeakyRelu { alpha } => {
                map_in_place(out, |v| if v > 0.0 { v } else { alpha * v });
            }
            Activation::Sigmoid => map_in_place(out, fastmath::sigmoid),
            Activation::Tanh => map_in_place(out, fastmath::tanh),
            // The kernel's own functions, inlined (not through `kernel::scalar`'s function
            // pointers), so each loop vectorizes: with a call per element, elu took 44% of
            // conv1d training.
            Activation::Elu { alpha } => map_in_place(out, |v| kernel::elu(v, alpha)),
            Activation::Selu => map_in_place(out, kernel::selu),
            Activation::Softplus => map_in_place(out, kernel::softplus),
            Activation::HardSigmoid => map_in_place(out, kernel::hard_sigmoid),
            Activation::Relu6 => map_in_place(out, kernel::relu6),
            other => {
                if let Some((f, p)) = newer_forward(other) {
                    map_in_place(out, |v| f(v, p));
                }
            }
        },
    );
}

/// `dy[i] ← f(dy[i], y[i])`; inlined like [`map_in_place`].
#[allow(clippy::inline_always)]
#[inline(always)]
fn scale_by(y: &ArrayViewD<'_, f32>, dy: &mut ArrayViewMutD<'_, f32>, f: impl Fn(f32, f32) -> f32) {
    if let (Some(ys), Some(ds)) = (y.as_slice(), dy.as_slice_mut()) {
        for (d, &v) in ds.iter_mut().zip(ys) {
            *d = f(*d, v);
        }
    } else {
        Zip::from(dy).and(y).for_each(|d, &v| *d = f(*d, v));
    }
}

/// `dy ← dy ⊙ act'(pre)`, with the derivative computed from the output `y = act(pre)`.
/// Large contiguous buffers are cut into one piece per thread ([`crate::runtime::pool::zip_parts`];
/// element-wise, so the same bits).
pub(crate) fn differentiate(
    act: Activation,
    y: &ArrayViewD<'_, f32>,
    dy: &mut ArrayViewMutD<'_, f32>,
) {
    if let (Some(ys), Some(ds)) = (y.as_slice(), dy.as_slice_mut()) {
        crate::runtime::pool::zip_parts(ds, ys, |d, y| differentiate_slices(act, y, d));
        return;
    }
    vectorized(
        #[inline(always)]
        || match act {
            Activation::Relu => scale_by(y, dy, |d, y| if y > 0.0 { d } else { 0.0 }),
            Activation::LeakyRelu { alpha } => {
                scale_by(y, dy, |d, y| if y > 0.0 { d } else { alpha * d });
            }
            Activation::Sigmoid => scale_by(y, dy, |d, y| d * y * (1.0 - y)),
            Activation::Tanh => scale_by(y, dy, |d, y| d * (1.0 - y * y)),
            other => {
                if let Some((f, p)) = newer_derivative(other) {
                    scale_by(y, dy, |d, y| f(d, y, p));
                }
            }
        },
    );
}

/// [`differentiate`] on flat slices (`ds[i] ← f(ds[i], ys[i])`).
fn differentiate_slices(act: Activation, ys: &[f32], ds: &mut [f32]) {
    vectorized(
        #[inline(always)]
        || match act {
            Activation::Relu => zip_in_place(ds, ys, |d, y| if y > 0.0 { d } else { 0.0 }),
            Activation::LeakyRelu { alpha } => {
                zip_in_place(ds, ys, |d, y| if y > 0.0 { d } else { alpha * d });
            }
            Activation::Sigmoid => zip_in_place(ds, ys, |d, y| d * y * (1.0 - y)),
            Activation::Tanh => zip_in_place(ds, ys, |d, y| d * (1.0 - y * y)),
            // As in `apply`: the kernel's functions inlined, so the loops vectorize.
            Activation::Elu { alpha } => {
                zip_in_place(ds, ys, |d, y| kernel::elu_from_output(d, y, alpha));
            }
            Activation::Selu => zip_in_place(ds, ys, |d, y| kernel::selu_from_output(d, y, 0.0)),
            Activation::Softplus => {
                zip_in_place(ds, ys, |d, y| kernel::softplus_from_output(d, y, 0.0));
            }
            Activation::HardSigmoid => {
                zip_in_place(ds, ys, |d, y| kernel::hard_sigmoid_from_output(d, y, 0.0));
            }
            Activation::Relu6 => zip_in_place(ds, ys, |d, y| kernel::relu6_from_output(d, y, 0.0)),
            other => {
                if let Some((f, p)) = newer_derivative(other) {
                    zip_in_place(ds, ys, |d, y| f(d, y, p));
                }
            }
        },
    );
}

/// `ds[i] ← f(ds[i], ys[i])`; inlined like [`map_in_place`].
#[allow(clippy::inline_always)]
#[inline(always)]
fn zip_in_place(ds: &mut [f32], ys: &[f32], f: impl Fn(f32, f32) -> f32) {
    for (d, &v) in ds.iter_mut().zip(ys) {
        *d = f(*d, v);
    }
}

#[cfg(test)]
mod tests {
    use ndarray::ArrayD;

    use super::{differentiate, Activation};
    use crate::runtime::pool::ZIP_SPLIT_MIN;

    #[test]
    fn split_derivatives_are_the_serial_ones() {
        let len = ZIP_SPLIT_MIN + 777;
        let y = ArrayD::from_shape_fn(vec![len], |i| ((i[0] * 37 % 101) as f32 - 50.0) / 50.0);
        let dy = ArrayD::from_shape_fn(vec![len], |i| ((i[0] * 13 % 97) as f32 - 48.0) / 7.0);
        for act in [
            Activation::Relu,
            Activation::LeakyRelu { alpha: 0.2 },
            Activation::Tanh,
        ] {
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap_or_else(|e| panic!("pool: {e}"));
                let mut d = dy.clone();
                pool.install(|| differentiate(act, &y.view(), &mut d.view_mut()));
                d.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let serial = run(1);
            assert_eq!(run(2), serial, "{act:?}");
            assert_eq!(run(3), serial, "{act:?}");
            // Relu passes the gradient where the output is positive and zero elsewhere.
            if act == Activation::Relu {
                let expect: Vec<u32> = dy
                    .iter()
                    .zip(&y)
                    .map(|(&d, &v)| if v > 0.0 { d } else { 0.0 }.to_bits())
                    .collect();
                assert_eq!(serial, expect);
            }
        }
    }
}
