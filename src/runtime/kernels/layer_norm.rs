//! Layer normalization over the last axis (Keras `LayerNormalization(axis=-1)`).
//!
//! `x: [..., D]`, `γ, β: [D]`. Per row: `x̂ = (x − μ)/√(σ² + ε)` (biased variance), `y = γx̂ + β`.
//! Backward per row with `g = dy·γ`: `dx = inv_std/D · (D·g − Σg − x̂·Σ(g·x̂))`,
//! `dγ = Σ_rows dy·x̂`, `dβ = Σ_rows dy` (all overwritten). Row sums use f64, in eight
//! partial sums of a fixed order (`simd_train::lane_sum3_f64`), so they do not wait on one chain of adds.
//!
//! Threading: large calls split their rows between the current rayon pool's threads (each row
//! computed exactly as unsplit); `dγ` and `dβ` are summed over the rows in order afterwards, so
//! results do not depend on the thread count.

use ndarray::{ArrayView1, ArrayViewD, ArrayViewMut1, ArrayViewMutD};

use super::error::{expect_shape, param_err, shape_err, KernelResult};
use super::linalg::{flat, flat_mut, may_split};
use super::simd_train::{lane_sum3_f64, vectorized};

const OP: &str = "layer_norm";

/// A row's mean and `1/√(σ² + ε)`, both summed in f64 in [`lane_sum3_f64`]'s order
/// (`simd_train::row_mean_var`, which keeps the eight partial sums in vector registers).
#[allow(clippy::inline_always)]
#[inline(always)]
fn row_stats(row: &[f32], epsilon: f32) -> (f32, f32) {
    let (mean, var) = super::simd_train::row_mean_var(row);
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

/// Values (`rows · D`) below which a call stays on the calling thread.
const PARALLEL_MIN_VALUES: usize = 1 << 15;

/// The row ranges a call of `rows` rows of `d` runs side by side: one per thread of the
/// current pool when the call is large and may split (see `linalg::may_split`), else one.
fn row_slices(rows: usize, d: usize) -> Vec<(usize, usize)> {
    let threads = if may_split() && rows.saturating_mul(d) >= PARALLEL_MIN_VALUES {
        rayon::current_num_threads()
    } else {
        1
    };
    super::batch_ranges(rows, threads)
}

/// Splits `buf` into the parts of `slices` (rows of `d` values), in order.
fn split_rows<'a, T>(
    mut buf: &'a mut [T],
    slices: &[(usize, usize)],
    d: usize,
) -> Vec<&'a mut [T]> {
    let mut parts = Vec::with_capacity(slices.len());
    for &(a, b) in slices {
        let len = ((b - a) * d).min(buf.len());
        let (part, rest) = std::mem::take(&mut buf).split_at_mut(len);
        parts.push(part);
        buf = rest;
    }
    parts
}

/// `out = γ x̂ + β` row by row (rows split between the threads; each row's values do not
/// depend on the split).
pub fn layer_norm_forward(
    x: ArrayViewD<'_, f32>,
    gamma: ArrayView1<'_, f32>,
    beta: ArrayView1<'_, f32>,
    epsilon: f32,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let d = width(x.shape(), &gamma, &beta, epsilon)?;
    expect_shape(OP, "out", out.shape(), x.shape())?;
    let xs = flat(OP, "x", &x)?;
    let slices = row_slices(xs.len() / d, d);
    let jobs: Vec<_> = slices
        .iter()
        .zip(split_rows(flat_mut(OP, "out", &mut out)?, &slices, d))
        .map(|(&(a, b), o)| (&xs[a * d..b * d], o))
        .collect();
    let (gamma, beta) = (flat(OP, "gamma", &gamma)?, flat(OP, "beta", &beta)?);
    super::run_slices(jobs, |(xp, op)| {
        vectorized(
            #[inline(always)]
            || {
                for (xr, or) in xp.chunks_exact(d).zip(op.chunks_exact_mut(d)) {
                    let (mean, inv) = row_stats(xr, epsilon);
                    for (((o, &v), &g), &b) in or.iter_mut().zip(xr).zip(gamma).zip(beta) {
                        *o = g * (v - mean) * inv + b;
                    }
                }
            },
        );
        Ok(())
    })
}

/// Backward of [`layer_norm_forward`]; recomputes row statistics from `x`. `dx` row by row
/// (rows split between the threads, keeping each row's statistics), then `dγ` and `dβ` summed
/// over the rows in order on the calling thread.
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
    let (xs, dys) = (flat(OP, "x", &x)?, flat(OP, "dy", &dy)?);
    let rows = xs.len() / d;
    let slices = row_slices(rows, d);
    let mut stats = vec![(0f32, 0f32); rows];
    let jobs: Vec<_> = slices
        .iter()
        .zip(split_rows(flat_mut(OP, "dx", &mut dx)?, &slices, d))
        .zip(split_rows(&mut stats, &slices, 1))
        .map(|((&(a, b), dxp), st)| (&xs[a * d..b * d], &dys[a * d..b * d], dxp, st))
        .collect();
    let gamma_s = flat(OP, "gamma", &gamma)?;
    super::run_slices(jobs, |(xp, gp, dxp, st)| {
        vectorized(
            #[inline(always)]
            || {
                let rows = xp.chunks_exact(d).zip(gp.chunks_exact(d));
                for (((xr, gr), dr), row_st) in rows.zip(dxp.chunks_exact_mut(d)).zip(st.iter_mut())
                {
                    let (mean, inv) = row_stats(xr, epsilon);
                    *row_st = (mean, inv);
                    let xhat = |x: f32| f64::from((x - mean) * inv);
                    let g = |dy: f32, gamma: f32| f64::from(dy * gamma);
                    let sum_g = lane_sum3_f64(gr, gamma_s, xr, |dy, gamma, _| g(dy, gamma));
                    let sum_gx =
                        lane_sum3_f64(gr, gamma_s, xr, |dy, gamma, x| g(dy, gamma) * xhat(x));
                    let n = d as f64;
                    let scale = f64::from(inv) / n;
                    for (((out, &dy), &gamma), &x) in dr.iter_mut().zip(gr).zip(gamma_s).zip(xr) {
                        *out = (scale * (n * g(dy, gamma) - sum_g - xhat(x) * sum_gx)) as f32;
                    }
                }
            },
        );
        Ok(())
    })?;
    let (mut dg, mut db) = (vec![0f64; d], vec![0f64; d]);
    vectorized(
        #[inline(always)]
        || {
            for ((xr, gr), &(mean, inv)) in xs.chunks_exact(d).zip(dys.chunks_exact(d)).zip(&stats)
            {
                let columns = dg.iter_mut().zip(db.iter_mut()).zip(xr).zip(gr);
                for (((dg, db), &x), &dy) in columns {
                    let xhat = f64::from((x - mean) * inv);
                    *dg += f64::from(dy) * xhat;
                    *db += f64::from(dy);
                }
            }
        },
    );
    dgamma.iter_mut().zip(&dg).for_each(|(o, &v)| *o = v as f32);
    dbeta.iter_mut().zip(&db).for_each(|(o, &v)| *o = v as f32);
    Ok(())
}
