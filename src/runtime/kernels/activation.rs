//! Activation functions and their derivatives, element-wise except softmax.
//!
//! Forward writes `out = act(x)`; backward writes `dx = act'(x) ⊙ dy` given `x`, the forward
//! output `y` and `dy` (each activation uses whichever of `x`/`y` is cheaper). Shapes of all
//! tensors must agree. Conventions follow TensorFlow: relu' (0) = 0, leaky_relu' (0) = alpha,
//! gelu is the exact erf form. Sigmoid, tanh and softmax's exp are the vectorizable
//! [`fastmath`] versions (≤ 4e-7 relative error). Softmax is numerically stable (max
//! subtracted) on any axis and its backward is the Jacobian-vector product
//! `y ⊙ (dy − Σ dy ⊙ y)`.

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
