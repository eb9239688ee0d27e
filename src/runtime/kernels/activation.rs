//! Activation functions and their derivatives, element-wise except softmax.
//!
//! Forward writes `out = act(x)`; backward writes `dx = act'(x) ⊙ dy` given `x`, the forward
//! output `y` and `dy` (each activation uses whichever of `x`/`y` is cheaper). Shapes of all
//! tensors must agree. Conventions follow TensorFlow: relu' (0) = 0, leaky_relu' (0) = alpha,
//! gelu is the exact erf form. Sigmoid, tanh and softmax's exp are the vectorizable
//! [`fastmath`] versions (≤ 4e-7 relative error). Softmax is numerically stable (max
//! subtracted) on any axis and its backward is the Jacobian-vector product
//! `y ⊙ (dy − Σ dy ⊙ y)`.
//!
//! The newer activations (Keras 3's definitions): `swish`/`silu` `x·σ(x)`; `elu`
//! `x` for `x > 0` else `α(eˣ − 1)`; `selu` `λ·elu(x, α)` with Keras's `α ≈ 1.6733`,
//! `λ ≈ 1.0507`; `softplus` `ln(1 + eˣ)` (computed as `max(x, 0) + ln(1 + e^−|x|)`);
//! `hard_sigmoid` `relu6(x + 3) / 6` (Keras 3 and PyTorch, not Keras 2's `0.2x + 0.5`);
//! `relu6` `min(max(x, 0), 6)`; `mish` `x·tanh(softplus(x))`. Each has one scalar function
//! here, used by this kernel, the interpreter's in-place loops and the fused steps, so the
//! three give the same bits. The derivatives of elu, selu, softplus, hard_sigmoid and relu6
//! are computed from the output `y` (as TensorFlow's `EluGrad`/`SeluGrad` do), so that a fused
//! step needs no pre-activation ([`output_derivative`]); at the kinks they follow TensorFlow
//! (relu6' and hard_sigmoid' are 0 at both ends, elu' and selu' at 0 are the positive side's).

use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Zip};

use super::error::{expect_shape, param_err, KernelResult};
use super::fastmath;

const OP: &str = "activation";

/// An activation with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Linear,
    Relu,
    /// `x` for `x > 0`, else `alpha · x` (the Keras layer's default alpha is 0.3).
    LeakyRelu {
        alpha: f32,
    },
    Sigmoid,
    Tanh,
    /// Exact GELU: `x · Φ(x)`.
    Gelu,
    /// Softmax along `axis`.
    Softmax {
        axis: usize,
    },
    /// `x · σ(x)` (Keras's `swish`, alias `silu`).
    Swish,
    /// `x` for `x > 0`, else `alpha · (eˣ − 1)`; `alpha > 0`.
    Elu {
        alpha: f32,
    },
    /// `SELU_SCALE · elu(x, SELU_ALPHA)`.
    Selu,
    /// `ln(1 + eˣ)`.
    Softplus,
    /// `relu6(x + 3) / 6`.
    HardSigmoid,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x · tanh(softplus(x))`.
    Mish,
}

/// Keras's SELU constants (defined beside the activations in `ops::types`, which the exporter
/// reads too).
pub use crate::ops::types::{SELU_ALPHA, SELU_SCALE};

/// `x · σ(x)`.
pub fn swish(x: f32) -> f32 {
    x * fastmath::sigmoid(x)
}

/// `x` for `x > 0`, else `alpha · (eˣ − 1)`. Inlined, so callers' loops vectorize.
#[inline]
pub fn elu(x: f32, alpha: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        alpha * fastmath::expm1(x)
    }
}

/// `λ·x` for `x > 0`, else `λα·(eˣ − 1)`.
#[inline]
pub fn selu(x: f32) -> f32 {
    if x > 0.0 {
        SELU_SCALE * x
    } else {
        (SELU_SCALE * SELU_ALPHA) * fastmath::expm1(x)
    }
}

/// `ln(1 + eˣ)` without overflow: `max(x, 0) + ln(1 + e^−|x|)`.
#[inline]
pub fn softplus(x: f32) -> f32 {
    x.max(0.0) + fastmath::exp(-x.abs()).ln_1p()
}

/// `relu6(x + 3) / 6`.
#[inline]
pub fn hard_sigmoid(x: f32) -> f32 {
    relu6(x + 3.0) / 6.0
}

/// `min(max(x, 0), 6)` (NaN stays NaN).
#[inline]
pub fn relu6(x: f32) -> f32 {
    x.clamp(0.0, 6.0)
}

/// `x · tanh(softplus(x))`.
pub fn mish(x: f32) -> f32 {
    x * fastmath::tanh(softplus(x))
}

/// `d(swish)/dx = σ(x)·(1 + x·(1 − σ(x)))`.
fn swish_grad(x: f32) -> f32 {
    let s = fastmath::sigmoid(x);
    s * (1.0 + x * (1.0 - s))
}

/// `d(mish)/dx = tanh(sp) + x·(1 − tanh²(sp))·σ(x)`, `sp = softplus(x)`.
fn mish_grad(x: f32) -> f32 {
    let t = fastmath::tanh(softplus(x));
    t + x * (1.0 - t * t) * fastmath::sigmoid(x)
}

/// An activation's scalar function of `(x, parameter)`.
pub type Scalar = fn(f32, f32) -> f32;
/// An activation's `dy · act'(x)` as a function of `(dy, y, parameter)`.
pub type FromOutput = fn(f32, f32, f32) -> f32;

/// `dy · act'(x)` from the output `y = act(x)` alone, for the activations whose derivative is
/// a function of their output (`None` for the others): relu6 and hard_sigmoid pass `dy` (times
/// 1/6) where `y` is strictly inside their range; elu (`alpha > 0`) and selu multiply by
/// `y + α` (`y + λα`) where `y < 0` (TensorFlow's `EluGrad`/`SeluGrad`: at 0 the slope is the
/// positive side's); softplus by `σ(x) = 1 − e^−y`.
pub fn output_derivative(act: Activation) -> Option<FromOutput> {
    Some(match act {
        Activation::Relu6 => relu6_from_output,
        Activation::HardSigmoid => hard_sigmoid_from_output,
        Activation::Elu { .. } => elu_from_output,
        Activation::Selu => selu_from_output,
        Activation::Softplus => softplus_from_output,
        _ => return None,
    })
}

/// relu6's `dy · act'` from its output `y` (see [`output_derivative`]).
#[inline]
pub fn relu6_from_output(d: f32, y: f32, _: f32) -> f32 {
    if y > 0.0 && y < 6.0 {
        d
    } else {
        0.0
    }
}

/// hard_sigmoid's `dy · act'` from its output `y`.
#[inline]
pub fn hard_sigmoid_from_output(d: f32, y: f32, _: f32) -> f32 {
    if y > 0.0 && y < 1.0 {
        d / 6.0
    } else {
        0.0
    }
}

/// elu's `dy · act'` from its output `y` and `alpha`.
#[inline]
pub fn elu_from_output(d: f32, y: f32, alpha: f32) -> f32 {
    if y < 0.0 {
        d * (y + alpha)
    } else {
        d
    }
}

/// selu's `dy · act'` from its output `y`.
#[inline]
pub fn selu_from_output(d: f32, y: f32, _: f32) -> f32 {
    if y < 0.0 {
        d * (y + SELU_SCALE * SELU_ALPHA)
    } else {
        d * SELU_SCALE
    }
}

/// softplus's `dy · act'` from its output `y`: `dy · σ(x) = dy · (1 − e^−y)`.
#[inline]
pub fn softplus_from_output(d: f32, y: f32, _: f32) -> f32 {
    d * -fastmath::expm1(-y)
}

/// The parameter [`output_derivative`]'s function takes (elu's `alpha`, else 0).
pub fn derivative_parameter(act: Activation) -> f32 {
    match act {
        Activation::Elu { alpha } => alpha,
        _ => 0.0,
    }
}

/// The scalar function of one of the newer element-wise activations (`None` for the others,
/// which have loops of their own).
pub fn scalar(act: Activation) -> Option<Scalar> {
    // Each function takes (x, parameter).
    Some(match act {
        Activation::Swish => |x, _| swish(x),
        Activation::Elu { .. } => elu,
        Activation::Selu => |x, _| selu(x),
        Activation::Softplus => |x, _| softplus(x),
        Activation::HardSigmoid => |x, _| hard_sigmoid(x),
        Activation::Relu6 => |x, _| relu6(x),
        Activation::Mish => |x, _| mish(x),
        _ => return None,
    })
}

/// Error function, |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit, in f64).
pub fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - erfc
    } else {
        erfc - 1.0
    }
}

fn gelu(x: f32) -> f32 {
    let xd = f64::from(x);
    (0.5 * xd * (1.0 + erf(xd * std::f64::consts::FRAC_1_SQRT_2))) as f32
}

fn gelu_grad(x: f32) -> f32 {
    let xd = f64::from(x);
    let cdf = 0.5 * (1.0 + erf(xd * std::f64::consts::FRAC_1_SQRT_2));
    let pdf = (-0.5 * xd * xd).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (cdf + xd * pdf) as f32
}

/// `out = act(x)`.
pub fn activation_forward(
    act: Activation,
    x: ArrayViewD<'_, f32>,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    expect_shape(OP, "out", out.shape(), x.shape())?;
    // Contiguous tensors (the interpreter's case) take a flat-slice loop the compiler
    // vectorizes; strided views fall back to Zip.
    let map = |f: fn(f32) -> f32, out: &mut ArrayViewMutD<'_, f32>| {
        if let (Some(xs), Some(os)) = (x.as_slice(), out.as_slice_mut()) {
            os.iter_mut().zip(xs).for_each(|(o, &v)| *o = f(v));
        } else {
            Zip::from(out).and(&x).for_each(|o, &v| *o = f(v));
        }
    };
    match act {
        Activation::Linear => out.assign(&x),
        Activation::Relu => map(|v| v.max(0.0), &mut out),
        Activation::LeakyRelu { alpha } => {
            Zip::from(&mut out)
                .and(&x)
                .for_each(|o, &v| *o = if v > 0.0 { v } else { alpha * v });
        }
        Activation::Sigmoid => map(fastmath::sigmoid, &mut out),
        Activation::Tanh => map(fastmath::tanh, &mut out),
        Activation::Gelu => map(gelu, &mut out),
        Activation::Swish
        | Activation::Elu { .. }
        | Activation::Selu
        | Activation::Softplus
        | Activation::HardSigmoid
        | Activation::Relu6
        | Activation::Mish => {
            if let Some(f) = scalar(act) {
                let p = derivative_parameter(act);
                Zip::from(&mut out).and(&x).for_each(|o, &v| *o = f(v, p));
            }
        }
        Activation::Softmax { axis } => {
            if axis >= x.ndim() {
                return Err(param_err(
                    OP,
                    format!("softmax axis {axis} of rank {}", x.ndim()),
                ));
            }
            Zip::from(x.lanes(Axis(axis)))
                .and(out.lanes_mut(Axis(axis)))
                .for_each(|xl, mut ol| {
                    let max = xl.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    let mut sum = 0.0f32;
                    Zip::from(&mut ol).and(&xl).for_each(|o, &v| {
                        *o = fastmath::exp(v - max);
                        sum += *o;
                    });
                    ol.mapv_inplace(|v| v / sum);
                });
        }
    }
    Ok(())
}

/// `dx = act'(x) ⊙ dy` (softmax: the Jacobian-vector product), given `y = act(x)`.
pub fn activation_backward(
    act: Activation,
    x: ArrayViewD<'_, f32>,
    y: ArrayViewD<'_, f32>,
    dy: ArrayViewD<'_, f32>,
    mut dx: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    expect_shape(OP, "y", y.shape(), x.shape())?;
    expect_shape(OP, "dy", dy.shape(), x.shape())?;
    expect_shape(OP, "dx", dx.shape(), x.shape())?;
    let zip = Zip::from(&mut dx).and(&x).and(&y).and(&dy);
    match act {
        Activation::Linear => zip.for_each(|d, _, _, &g| *d = g),
        Activation::Relu => zip.for_each(|d, &v, _, &g| *d = if v > 0.0 { g } else { 0.0 }),
        Activation::LeakyRelu { alpha } => {
            zip.for_each(|d, &v, _, &g| *d = if v > 0.0 { g } else { alpha * g });
        }
        Activation::Sigmoid => zip.for_each(|d, _, &s, &g| *d = g * s * (1.0 - s)),
        Activation::Tanh => zip.for_each(|d, _, &t, &g| *d = g * (1.0 - t * t)),
        Activation::Gelu => zip.for_each(|d, &v, _, &g| *d = g * gelu_grad(v)),
        Activation::Swish => zip.for_each(|d, &v, _, &g| *d = g * swish_grad(v)),
        Activation::Mish => zip.for_each(|d, &v, _, &g| *d = g * mish_grad(v)),
        Activation::Elu { .. }
        | Activation::Selu
        | Activation::Softplus
        | Activation::HardSigmoid
        | Activation::Relu6 => {
            if let Some(f) = output_derivative(act) {
                let p = derivative_parameter(act);
                zip.for_each(|d, _, &s, &g| *d = f(g, s, p));
            }
        }
        Activation::Softmax { axis } => {
            if axis >= x.ndim() {
                return Err(param_err(
                    OP,
                    format!("softmax axis {axis} of rank {}", x.ndim()),
                ));
            }
            Zip::from(dx.lanes_mut(Axis(axis)))
                .and(y.lanes(Axis(axis)))
                .and(dy.lanes(Axis(axis)))
                .for_each(|mut dl, yl, gl| {
                    let dot: f32 = Zip::from(&yl).and(&gl).fold(0.0, |acc, &s, &g| acc + s * g);
                    Zip::from(&mut dl)
                        .and(&yl)
                        .and(&gl)
                        .for_each(|d, &s, &g| *d = s * (g - dot));
                });
        }
    }
    Ok(())
}
