//! Batch normalization over the last (channel) axis, Keras semantics.
//!
//! `x: [..., C]`; every leading position is one of `M` samples of each channel.
//! Inference: `y = γ (x − moving_mean) / √(moving_var + ε) + β`.
//! Training: batch mean and biased variance per channel, `x̂ = (x − μ) / √(σ² + ε)`,
//! `y = γ x̂ + β`; [`BatchNormStats`] keeps `μ` and `1/√(σ² + ε)` for backward:
//! `dx = γ·inv_std/M · (M·dy − Σdy − x̂·Σ(dy·x̂))`, `dγ = Σ dy·x̂`, `dβ = Σ dy`.
//! Moving statistics follow Keras: `moving = moving·m + batch·(1 − m)` with the biased batch
//! variance. Sums are accumulated in f64 for stability.

use ndarray::{ArrayView1, ArrayViewD, ArrayViewMut1, ArrayViewMutD};

use super::error::{expect_shape, param_err, shape_err, KernelResult};
use super::linalg::{flat, flat_mut};

const OP: &str = "batch_norm";

/// Keras' default epsilon for batch and layer normalization.
pub const NORM_EPSILON: f32 = 1e-3;
/// Keras' default moving-average momentum.
pub const BATCH_NORM_MOMENTUM: f32 = 0.99;

/// Per-channel scale and offset.
#[derive(Debug, Clone, Copy)]
pub struct BatchNormParams<'a> {
    pub gamma: ArrayView1<'a, f32>,
    pub beta: ArrayView1<'a, f32>,
    pub epsilon: f32,
}

/// Batch statistics of a training-mode forward, kept for backward and the moving update.
#[derive(Debug, Clone, Default)]
pub struct BatchNormStats {
    /// Per-channel batch mean.
    pub mean: Vec<f32>,
    /// Per-channel biased batch variance.
    pub var: Vec<f32>,
    /// Per-channel `1/√(var + ε)`.
    pub inv_std: Vec<f32>,
}

fn channels(x_shape: &[usize], p: &BatchNormParams<'_>) -> KernelResult<usize> {
    let c = *x_shape
        .last()
        .ok_or_else(|| shape_err(OP, "rank-0 input"))?;
    expect_shape(OP, "gamma", p.gamma.shape(), &[c])?;
    expect_shape(OP, "beta", p.beta.shape(), &[c])?;
    if p.epsilon.is_nan() || p.epsilon <= 0.0 {
        return Err(param_err(OP, "epsilon must be positive"));
    }
    Ok(c)
}

fn normalize(
    xs: &[f32],
    c: usize,
    mean: &[f32],
    inv_std: &[f32],
    p: &BatchNormParams<'_>,
    out: &mut [f32],
) {
    for (xr, orow) in xs.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
        for (k, (o, &v)) in orow.iter_mut().zip(xr).enumerate() {
            *o = p.gamma[k] * (v - mean[k]) * inv_std[k] + p.beta[k];
        }
    }
}

/// Inference: normalize with the moving statistics.
pub fn batch_norm_inference(
    x: ArrayViewD<'_, f32>,
    p: &BatchNormParams<'_>,
    moving_mean: ArrayView1<'_, f32>,
    moving_var: ArrayView1<'_, f32>,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let c = channels(x.shape(), p)?;
    expect_shape(OP, "moving_mean", moving_mean.shape(), &[c])?;
    expect_shape(OP, "moving_var", moving_var.shape(), &[c])?;
    expect_shape(OP, "out", out.shape(), x.shape())?;
    let mean = moving_mean.to_vec();
    let inv: Vec<f32> = moving_var
        .iter()
        .map(|&v| 1.0 / (v + p.epsilon).sqrt())
        .collect();
    if c > 0 {
        normalize(
            flat(OP, "x", &x)?,
            c,
            &mean,
            &inv,
            p,
            flat_mut(OP, "out", &mut out)?,
        );
    }
    Ok(())
}

/// Training forward: normalize with batch statistics, written into `stats`.
pub fn batch_norm_train_forward(
    x: ArrayViewD<'_, f32>,
    p: &BatchNormParams<'_>,
    stats: &mut BatchNormStats,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let c = channels(x.shape(), p)?;
    expect_shape(OP, "out", out.shape(), x.shape())?;
    let xs = flat(OP, "x", &x)?;
    if c == 0 || xs.is_empty() {
        return Err(param_err(
            OP,
            "training batch norm needs at least one sample and channel",
        ));
    }
    let m = (xs.len() / c) as f64;
    let mut sum = vec![0f64; c];
    for row in xs.chunks_exact(c) {
        sum.iter_mut()
            .zip(row)
            .for_each(|(s, &v)| *s += f64::from(v));
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / m).collect();
    let mut sq = vec![0f64; c];
    for row in xs.chunks_exact(c) {
        sq.iter_mut()
            .zip(row)
            .zip(&mean)
            .for_each(|((s, &v), &mu)| *s += (f64::from(v) - mu).powi(2));
    }
    stats.mean = mean.iter().map(|&v| v as f32).collect();
    stats.var = sq.iter().map(|&s| (s / m) as f32).collect();
    stats.inv_std = sq
        .iter()
        .map(|&s| (1.0 / (s / m + f64::from(p.epsilon)).sqrt()) as f32)
        .collect();
    normalize(
        xs,
        c,
        &stats.mean,
        &stats.inv_std,
        p,
        flat_mut(OP, "out", &mut out)?,
    );
    Ok(())
}

/// Training backward: writes `dx`, `dgamma`, `dbeta` (overwritten).
pub fn batch_norm_backward(
    x: ArrayViewD<'_, f32>,
    dy: ArrayViewD<'_, f32>,
    p: &BatchNormParams<'_>,
    stats: &BatchNormStats,
    mut dx: ArrayViewMutD<'_, f32>,
    mut dgamma: ArrayViewMut1<'_, f32>,
    mut dbeta: ArrayViewMut1<'_, f32>,
) -> KernelResult<()> {
    let c = channels(x.shape(), p)?;
    expect_shape(OP, "dy", dy.shape(), x.shape())?;
    expect_shape(OP, "dx", dx.shape(), x.shape())?;
    expect_shape(OP, "dgamma", dgamma.shape(), &[c])?;
    expect_shape(OP, "dbeta", dbeta.shape(), &[c])?;
    if stats.mean.len() != c || stats.inv_std.len() != c {
        return Err(shape_err(OP, "statistics do not match the channel count"));
    }
    let (xs, dys) = (flat(OP, "x", &x)?, flat(OP, "dy", &dy)?);
    if c == 0 || xs.is_empty() {
        return Err(param_err(
            OP,
            "batch norm backward needs at least one sample and channel",
        ));
    }
    let m = (xs.len() / c) as f64;
    let (mut sum_dy, mut sum_dy_xhat) = (vec![0f64; c], vec![0f64; c]);
    for (xr, gr) in xs.chunks_exact(c).zip(dys.chunks_exact(c)) {
        for k in 0..c {
            let xhat = f64::from((xr[k] - stats.mean[k]) * stats.inv_std[k]);
            sum_dy[k] += f64::from(gr[k]);
            sum_dy_xhat[k] += f64::from(gr[k]) * xhat;
        }
    }
    for (xr, (gr, dr)) in xs.chunks_exact(c).zip(
        dys.chunks_exact(c)
            .zip(flat_mut(OP, "dx", &mut dx)?.chunks_exact_mut(c)),
    ) {
        for k in 0..c {
            let xhat = f64::from((xr[k] - stats.mean[k]) * stats.inv_std[k]);
            let scale = f64::from(p.gamma[k] * stats.inv_std[k]) / m;
            dr[k] = (scale * (m * f64::from(gr[k]) - sum_dy[k] - xhat * sum_dy_xhat[k])) as f32;
        }
    }
    dgamma
        .iter_mut()
        .zip(&sum_dy_xhat)
        .for_each(|(d, &s)| *d = s as f32);
    dbeta
        .iter_mut()
        .zip(&sum_dy)
        .for_each(|(d, &s)| *d = s as f32);
    Ok(())
}

/// Keras' moving-statistics update: `moving = moving·momentum + batch·(1 − momentum)`.
pub fn batch_norm_update_moving(
    stats: &BatchNormStats,
    momentum: f32,
    mut moving_mean: ArrayViewMut1<'_, f32>,
    mut moving_var: ArrayViewMut1<'_, f32>,
) -> KernelResult<()> {
    let c = stats.mean.len();
    expect_shape(OP, "moving_mean", moving_mean.shape(), &[c])?;
    expect_shape(OP, "moving_var", moving_var.shape(), &[c])?;
    if stats.var.len() != c {
        return Err(shape_err(OP, "statistics do not match the channel count"));
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(param_err(OP, format!("momentum {momentum} outside [0, 1]")));
    }
    moving_mean
        .iter_mut()
        .zip(&stats.mean)
        .for_each(|(mv, &b)| *mv = *mv * momentum + b * (1.0 - momentum));
    moving_var
        .iter_mut()
        .zip(&stats.var)
        .for_each(|(mv, &b)| *mv = *mv * momentum + b * (1.0 - momentum));
    Ok(())
}
