//! Layer normalization over the last axis (Keras `LayerNormalization(axis=-1)`).
//!
//! `x: [..., D]`, `γ, β: [D]`. Per row: `x̂ = (x − μ)/√(σ² + ε)` (biased variance), `y = γx̂ + β`.
//! Backward per row with `g = dy·γ`: `dx = inv_std/D · (D·g − Σg − x̂·Σ(g·x̂))`,
//! `dγ = Σ_rows dy·x̂`, `dβ = Σ_rows dy` (all overwritten). Row sums use f64.

use ndarray::{ArrayView1, ArrayViewD, ArrayViewMut1, ArrayViewMutD};

use super::error::{expect_shape, param_err, shape_err, KernelResult};
use super::linalg::{flat, flat_mut};

const OP: &str = "layer_norm";

fn row_stats(row: &[f32], epsilon: f32) -> (f32, f32) {
    let d = row.len() as f64;
    let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / d;
    let var = row
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / d;
    (
        mean as f32,
        (1.0 / (var + f64::from(epsilon)).sqrt()) as f32,
    )
}

fn width(
    x_shape: &[usize],
    gamma: &ArrayView1<'_, f32>,
    beta: &ArrayView1<'_, f32>,
    epsilon: f32,
) -> KernelResult<usize> {
    let d = *x_shape
        .last()
        .ok_or_else(|| shape_err(OP, "rank-0 input"))?;
    expect_shape(OP, "gamma", gamma.shape(), &[d])?;
    expect_shape(OP, "beta", beta.shape(), &[d])?;
    if d == 0 || epsilon.is_nan() || epsilon <= 0.0 {
        return Err(param_err(
            OP,
            "needs a non-empty last axis and a positive epsilon",
        ));
    }
    Ok(d)
}

/// `out = γ x̂ + β` row by row.
pub fn layer_norm_forward(
    x: ArrayViewD<'_, f32>,
    gamma: ArrayView1<'_, f32>,
    beta: ArrayView1<'_, f32>,
    epsilon: f32,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let d = width(x.shape(), &gamma, &beta, epsilon)?;
    expect_shape(OP, "out", out.shape(), x.shape())?;
    for (xr, or) in flat(OP, "x", &x)?
        .chunks_exact(d)
        .zip(flat_mut(OP, "out", &mut out)?.chunks_exact_mut(d))
    {
        let (mean, inv) = row_stats(xr, epsilon);
        for (k, (o, &v)) in or.iter_mut().zip(xr).enumerate() {
            *o = gamma[k] * (v - mean) * inv + beta[k];
        }
    }
    Ok(())
}

/// Backward of [`layer_norm_forward`]; recomputes row statistics from `x`.
pub fn layer_norm_backward(
    x: ArrayViewD<'_, f32>,
    dy: ArrayViewD<'_, f32>,
    gamma: ArrayView1<'_, f32>,
    epsilon: f32,
    mut dx: ArrayViewMutD<'_, f32>,
    mut dgamma: ArrayViewMut1<'_, f32>,
    mut dbeta: ArrayViewMut1<'_, f32>,
) -> KernelResult<()> {
    let d = width(x.shape(), &gamma, &gamma, epsilon)?;
    expect_shape(OP, "dy", dy.shape(), x.shape())?;
    expect_shape(OP, "dx", dx.shape(), x.shape())?;
    expect_shape(OP, "dgamma", dgamma.shape(), &[d])?;
    expect_shape(OP, "dbeta", dbeta.shape(), &[d])?;
    let (mut dg, mut db) = (vec![0f64; d], vec![0f64; d]);
    let rows = flat(OP, "x", &x)?
        .chunks_exact(d)
        .zip(flat(OP, "dy", &dy)?.chunks_exact(d));
    for ((xr, gr), dr) in rows.zip(flat_mut(OP, "dx", &mut dx)?.chunks_exact_mut(d)) {
        let (mean, inv) = row_stats(xr, epsilon);
        let (mut sum_g, mut sum_gx) = (0f64, 0f64);
        for k in 0..d {
            let xhat = f64::from((xr[k] - mean) * inv);
            let g = f64::from(gr[k] * gamma[k]);
            sum_g += g;
            sum_gx += g * xhat;
            dg[k] += f64::from(gr[k]) * xhat;
            db[k] += f64::from(gr[k]);
        }
        let n = d as f64;
        for k in 0..d {
            let xhat = f64::from((xr[k] - mean) * inv);
            let g = f64::from(gr[k] * gamma[k]);
            dr[k] = (f64::from(inv) / n * (n * g - sum_g - xhat * sum_gx)) as f32;
        }
    }
    dgamma.iter_mut().zip(&dg).for_each(|(o, &v)| *o = v as f32);
    dbeta.iter_mut().zip(&db).for_each(|(o, &v)| *o = v as f32);
    Ok(())
}
