//! The element-wise losses: mse, mae, Huber, log-cosh and binary cross-entropy (probabilities or
//! logits). Each element is one entry; the loss is the mean over all of them.

use ndarray::{ArrayD, ArrayViewD, Zip};

use super::{check_same_shape, LossError, LossOutput, EPSILON};
use crate::runtime::kernels::simd_train::vectorized;

/// Interleaved partial sums of [`flat_reduce`]: enough independent f64 additions in flight
/// to hide their latency, and SIMD-friendly.
const LANES: usize = 8;

/// The contiguous case of [`reduce`]: writes `gs` and returns the sum of `per_element` over
/// all elements, element `i` going to partial sum `i mod LANES` (in order), the partial sums
/// combined by a fixed pairwise tree and the tail added last, in order. Deterministic.
#[allow(clippy::inline_always)]
#[inline(always)]
fn flat_reduce(
    ys: &[f32],
    ts: &[f32],
    gs: &mut [f32],
    scale: f64,
    per_element: &impl Fn(f64, f64) -> f64,
    grad_element: &impl Fn(f64, f64) -> f64,
) -> f64 {
    let mut partial = [0.0f64; LANES];
    let mut g_chunks = gs.chunks_exact_mut(LANES);
    let mut y_chunks = ys.chunks_exact(LANES);
    let mut t_chunks = ts.chunks_exact(LANES);
    for ((g, y), t) in (&mut g_chunks).zip(&mut y_chunks).zip(&mut t_chunks) {
        let (Ok(g), Ok(y), Ok(t)) = (
            <&mut [f32; LANES]>::try_from(g),
            <&[f32; LANES]>::try_from(y),
            <&[f32; LANES]>::try_from(t),
        ) else {
            continue;
        };
        // One operation at a time over the eight lanes (rather than one lane at a time), so
        // that LLVM turns each into vector instructions; per element, the same operations.
        let (mut yd, mut td) = ([0.0f64; LANES], [0.0f64; LANES]);
        for l in 0..LANES {
            (yd[l], td[l]) = (f64::from(y[l]), f64::from(t[l]));
        }
        for l in 0..LANES {
            partial[l] += per_element(yd[l], td[l]);
        }
        for l in 0..LANES {
            g[l] = (grad_element(yd[l], td[l]) * scale) as f32;
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            partial[l] += partial[l + width];
        }
    }
    let mut total = partial[0];
    let tail = g_chunks.into_remainder();
    for ((g, &y), &t) in tail
        .iter_mut()
        .zip(y_chunks.remainder())
        .zip(t_chunks.remainder())
    {
        let (y, t) = (f64::from(y), f64::from(t));
        total += per_element(y, t);
        *g = (grad_element(y, t) * scale) as f32;
    }
    total
}

/// Sums `per_element(y, t)` in f64 in a fixed order, and builds the gradient from
/// `grad_element(y, t)` (already divided by the entry count by the caller's closure).
fn reduce(
    output: &ArrayViewD<f32>,
    target: &ArrayViewD<f32>,
    per_element: impl Fn(f64, f64) -> f64,
    grad_element: impl Fn(f64, f64) -> f64,
) -> Result<LossOutput, LossError> {
    let n = check_same_shape(output, target)?;
    let mut grad = ArrayD::zeros(output.raw_dim());
    let scale = 1.0 / n as f64;
    // Contiguous tensors (the trainer's case) take flat-slice loops: same order, same bits.
    if let (Some(ys), Some(ts), Some(gs)) =
        (output.as_slice(), target.as_slice(), grad.as_slice_mut())
    {
        let total = vectorized(
            #[inline(always)]
            || flat_reduce(ys, ts, gs, scale, &per_element, &grad_element),
        );
        return Ok(LossOutput {
            loss: (total / n as f64) as f32,
            grad,
        });
    }
    let total: f64 = output
        .iter()
        .zip(target.iter())
        .map(|(&y, &t)| per_element(f64::from(y), f64::from(t)))
        .sum();
    Zip::from(&mut grad)
        .and(output)
        .and(target)
        .for_each(|g, &y, &t| {
            *g = (grad_element(f64::from(y), f64::from(t)) * scale) as f32;
        });
    Ok(LossOutput {
        loss: (total / n as f64) as f32,
        grad,
    })
}

/// Mean squared error.
pub fn mean_squared_error(
    output: &ArrayViewD<f32>,
    target: &ArrayViewD<f32>,
) -> Result<LossOutput, LossError> {
    reduce(
        output,
        target,
        |y, t| (y - t) * (y - t),
        |y, t| 2.0 * (y - t),
    )
}

/// Mean absolute error; the gradient at `y == t` is 0.
pub fn mean_absolute_error(
    output: &ArrayViewD<f32>,
    target: &ArrayViewD<f32>,
) -> Result<LossOutput, LossError> {
    let sign = |d: f64| {
        if d > 0.0 {
            1.0
        } else if d < 0.0 {
            -1.0
        } else {
            d * 0.0 // 0 for 0, NaN for NaN
        }
    };
    reduce(
        output,
        target,
        |y, t| (y - t).abs(),
        move |y, t| sign(y - t),
    )
}

/// Huber loss (Keras): `½d²` where `|d| ≤ delta`, else `delta·(|d| - ½delta)`, `d = y - t`;
/// gradient `d`, or `delta·sign(d)` outside.
pub fn huber(
    output: &ArrayViewD<f32>,
    target: &ArrayViewD<f32>,
    delta: f32,
) -> Result<LossOutput, LossError> {
    let delta = f64::from(delta);
    reduce(
        output,
        target,
        move |y, t| {
            let d = (y - t).abs();
            if d <= delta {
                0.5 * d * d
            } else {
                delta * (d - 0.5 * delta)
            }
        },
        move |y, t| (y - t).clamp(-delta, delta),
    )
}

/// Log-cosh loss (Keras): `ln cosh(d)`, `d = y - t`, computed as `d + softplus(-2d) - ln 2`
/// (no overflow for large `|d|`); gradient `tanh(d)`.
pub fn log_cosh(
    output: &ArrayViewD<f32>,
    target: &ArrayViewD<f32>,
) -> Result<LossOutput, LossError> {
    reduce(
        output,
        target,
        |y, t| {
            let d = y - t;
            let softplus = (-2.0 * d).max(0.0) + (-(2.0 * d).abs()).exp().ln_1p();
            d + softplus - std::f64::consts::LN_2
        },
        |y, t| (y - t).tanh(),
    )
}

/// Binary cross-entropy, from probabilities (clipped to `[eps, 1 - eps]`) or from logits.
pub fn binary_crossentropy(
    output: &ArrayViewD<f32>,
    target: &ArrayViewD<f32>,
    from_logits: bool,
) -> Result<LossOutput, LossError> {
    if from_logits {
        return reduce(
            output,
            target,
            |x, t| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p(),
            |x, t| sigmoid(x) - t,
        );
    }
    let clip = |p: f64| p.clamp(EPSILON, 1.0 - EPSILON);
    reduce(
        output,
        target,
        move |p, t| {
            let p = clip(p);
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        },
        move |p, t| {
            if (EPSILON..=1.0 - EPSILON).contains(&p) {
                -t / p + (1.0 - t) / (1.0 - p)
            } else {
                p * 0.0 // the clip is active: no gradient (NaN stays NaN)
            }
        },
    )
}

/// The logistic function, without overflow for large `|x|`.
pub(super) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}
