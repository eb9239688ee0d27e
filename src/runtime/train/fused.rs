//! Activations fused into conv2d and dense steps, applied in place on the step's output, and
//! their derivative taken from that output.
//!
//! Only the fusable activations (relu, leaky relu, sigmoid, tanh, and linear) occur here; each
//! derivative is a function of the activated output `y` alone: `relu'` is `y > 0` (0 at 0, as
//! TensorFlow), `leaky_relu'` is 1 for `y > 0` else `alpha` (needs `alpha > 0` so that the sign
//! of `y` is the sign of the pre-activation), `sigmoid' = y(1 − y)`, `tanh' = 1 − y²`. So the
//! pre-activation need not be kept.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};

use crate::ir::Activation;
use crate::runtime::kernels::fastmath;
use crate::runtime::kernels::simd_train::vectorized;

/// Whether `act` can be applied in place and differentiated from its output.
pub(crate) fn supported(act: Activation) -> bool {
    match act {
        Activation::Linear | Activation::Relu | Activation::Sigmoid | Activation::Tanh => true,
        Activation::LeakyRelu { alpha } => alpha > 0.0,
        Activation::Gelu | Activation::Softmax => false,
    }
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
            Activation::Linear | Activation::Gelu | Activation::Softmax => {}
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
pub(crate) fn differentiate(
    act: Activation,
    y: &ArrayViewD<'_, f32>,
    dy: &mut ArrayViewMutD<'_, f32>,
) {
    vectorized(
        #[inline(always)]
        || match act {
            Activation::Relu => scale_by(y, dy, |d, y| if y > 0.0 { d } else { 0.0 }),
            Activation::LeakyRelu { alpha } => {
                scale_by(y, dy, |d, y| if y > 0.0 { d } else { alpha * d });
            }
            Activation::Sigmoid => scale_by(y, dy, |d, y| d * y * (1.0 - y)),
            Activation::Tanh => scale_by(y, dy, |d, y| d * (1.0 - y * y)),
            Activation::Linear | Activation::Gelu | Activation::Softmax => {}
        },
    );
}
