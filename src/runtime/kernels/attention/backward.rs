//! Backward of multi-head attention, from `dy` (`[N, Tq, dq]`) and the training forward's
//! [`MhaCache`].
//!
//! Three phases, each with one level of threads: [`output_backward`] (the output projection:
//! `d_heads_out = dy·Woᵀ`, `dWo = heads_outᵀ·dy`, `dbo = Σ dy`, whole-batch products whose rows
//! split between the threads), [`core_backward`] (per head, per sample, one slice of the batch
//! per thread with its products on that thread: `dP' = dO_h·v_hᵀ`, `dv_h = (P ⊙ mask)ᵀ·dO_h`,
//! `dP = dP' ⊙ mask`, the softmax's `dS = P ⊙ (dP − Σ_j dP·P)`, `dq_h = dS·k_h/√K`,
//! `dk_h = dSᵀ·q_h` with `q` already scaled), then [`projection_backward`] for each input
//! projection (`dW = xᵀ·dproj`, `db = Σ dproj`, `dx = dproj·Wᵀ`, whole-batch). Every gradient
//! is overwritten. Weight gradients are sums over the whole batch in one product each, so they
//! do not depend on the slicing; `dx` is a per-row product.

use super::{gather_head, scatter_head, MhaCache, MhaShape, Projection, Sizes, OP};
use crate::runtime::kernels::error::{shape_err, KernelResult};
use crate::runtime::kernels::linalg::{column_sums, ensure_len, gemm, mat, mat_mut};
use crate::runtime::kernels::simd_train;

/// The output projection's gradients (overwritten).
pub struct OutputGrads<'a> {
    pub dkernel: &'a mut [f32],
    pub dbias: &'a mut [f32],
}

fn cached_shape(cache: &MhaCache) -> KernelResult<(MhaShape, Sizes)> {
    let shape = cache
        .shape
        .ok_or_else(|| shape_err(OP, "backward without a training forward"))?;
    let sizes = shape.validate()?;
    Ok((shape, sizes))
}

/// Phase 1: the output projection's gradients, and `d_heads_out` into the cache.
pub fn output_backward(
    cache: &mut MhaCache,
    output_kernel: &[f32],
    dy: &[f32],
    grads: OutputGrads<'_>,
) -> KernelResult<()> {
    let (shape, Sizes { hv, .. }) = cached_shape(cache)?;
    let rows = shape.batch * shape.tq;
    let dq = shape.dq;
    if dy.len() != rows * dq || grads.dbias.len() != dq || cache.heads_out.len() != rows * hv {
        return Err(shape_err(OP, "output gradient sizes"));
    }
    let dym = mat(OP, dy, rows, dq)?;
    let wo = mat(OP, output_kernel, hv, dq)?;
    ensure_len(&mut cache.d_heads_out, rows * hv);
    cache.d_heads_out.truncate(rows * hv);
    gemm(
        OP,
        1.0,
        &dym,
        &wo.t(),
        0.0,
        &mut mat_mut(OP, &mut cache.d_heads_out, rows, hv)?,
    )?;
    let om = mat(OP, &cache.heads_out, rows, hv)?;
    gemm(
        OP,
        1.0,
        &om.t(),
        &dym,
        0.0,
        &mut mat_mut(OP, grads.dkernel, hv, dq)?,
    )?;
    column_sums(dy, dq, grads.dbias);
    Ok(())
}

/// One slice's buffers for [`core_slice`].
struct CoreJob<'a> {
    start: usize,
    len: usize,
    dq: &'a mut [f32],
    dk: &'a mut [f32],
    dv: &'a mut [f32],
    scratch: &'a mut [f32],
}

/// The scratch of one head in [`core_slice`].
fn core_scratch_len(shape: &MhaShape, sizes: Sizes) -> usize {
    let (tq, tv, k, v) = (shape.tq, shape.tv, shape.key_dim, shape.value_dim);
    tq * v + v * tv + 2 * sizes.scores + tv * v + 2 * tv * k + 2 * tq * k
}

/// Phase 2 for one slice of samples.
fn core_slice(
    cache: &MhaCache,
    shape: &MhaShape,
    sizes: Sizes,
    job: CoreJob<'_>,
) -> KernelResult<()> {
    let MhaShape {
        tq,
        tv,
        heads,
        key_dim,
        value_dim,
        ..
    } = *shape;
    let Sizes { hk, hv, scores } = sizes;
    let CoreJob {
        start,
        len,
        dq,
        dk,
        dv,
        scratch,
    } = job;
    let (d_o, rest) = scratch.split_at_mut(tq * value_dim);
    let (vt, rest) = rest.split_at_mut(value_dim * tv);
    let (dp, rest) = rest.split_at_mut(scores);
    let (pd, rest) = rest.split_at_mut(scores);
    let (dvh, rest) = rest.split_at_mut(tv * value_dim);
    let (kh, rest) = rest.split_at_mut(tv * key_dim);
    let (dkh, rest) = rest.split_at_mut(tv * key_dim);
    let (qh, dqh) = rest.split_at_mut(tq * key_dim);
    let scale = 1.0 / (key_dim as f32).sqrt();
    for s in 0..len {
        let n = start + s;
        let q = &cache.q[n * tq * hk..(n + 1) * tq * hk];
        let k = &cache.k[n * tv * hk..(n + 1) * tv * hk];
        let v = &cache.v[n * tv * hv..(n + 1) * tv * hv];
        let d_heads = &cache.d_heads_out[n * tq * hv..(n + 1) * tq * hv];
        let (dqs, dks, dvs) = (
            &mut dq[s * tq * hk..(s + 1) * tq * hk],
            &mut dk[s * tv * hk..(s + 1) * tv * hk],
            &mut dv[s * tv * hv..(s + 1) * tv * hv],
        );
        for h in 0..heads {
            let at = (n * heads + h) * scores;
            let p = &cache.probs[at..at + scores];
            let mask = cache.mask.as_deref().map(|m| &m[at..at + scores]);
            gather_head(d_heads, (tq, hv, value_dim, h), false, d_o);
            gather_head(v, (tv, hv, value_dim, h), true, vt);
            let dom = mat(OP, d_o, tq, value_dim)?;
            gemm(
                OP,
                1.0,
                &dom,
                &mat(OP, vt, value_dim, tv)?,
                0.0,
                &mut mat_mut(OP, dp, tq, tv)?,
            )?;
            // The probabilities the values were weighted with, and the gradient before dropout.
            let weights: &[f32] = match mask {
                Some(m) => {
                    pd.iter_mut()
                        .zip(p.iter().zip(m))
                        .for_each(|(d, (&a, &b))| *d = a * b);
                    dp.iter_mut().zip(m).for_each(|(d, &b)| *d *= b);
                    pd
                }
                None => p,
            };
            let wm = mat(OP, weights, tq, tv)?;
            gemm(
                OP,
                1.0,
                &wm.t(),
                &dom,
                0.0,
                &mut mat_mut(OP, dvh, tv, value_dim)?,
            )?;
            scatter_head(dvh, (tv, hv, value_dim, h), 1.0, dvs);
            softmax_backward(p, dp, tv);
            gather_head(k, (tv, hk, key_dim, h), false, kh);
            gather_head(q, (tq, hk, key_dim, h), false, qh);
            let dsm = mat(OP, dp, tq, tv)?;
            gemm(
                OP,
                1.0,
                &dsm,
                &mat(OP, kh, tv, key_dim)?,
                0.0,
                &mut mat_mut(OP, dqh, tq, key_dim)?,
            )?;
            gemm(
                OP,
                1.0,
                &dsm.t(),
                &mat(OP, qh, tq, key_dim)?,
                0.0,
                &mut mat_mut(OP, dkh, tv, key_dim)?,
            )?;
            scatter_head(dqh, (tq, hk, key_dim, h), scale, dqs);
            scatter_head(dkh, (tv, hk, key_dim, h), 1.0, dks);
        }
    }
    Ok(())
}

/// `dS = P ⊙ (dP − Σ_j dP·P)` per row, in place over `dp`. The row dots go in blocks of
/// [`DOT_BLOCK`] rows by `simd_train::row_pair_dots` (eight partial sums per row, not one
/// chain of dependent adds); the update is vectorized.
pub(crate) fn softmax_backward(p: &[f32], dp: &mut [f32], width: usize) {
    let width = width.max(1);
    let block = DOT_BLOCK * width;
    let mut dots = [0f32; DOT_BLOCK];
    for (pb, db) in p.chunks(block).zip(dp.chunks_mut(block)) {
        let rows = (pb.len().min(db.len()) / width).min(DOT_BLOCK);
        let (pb, db) = (&pb[..rows * width], &mut db[..rows * width]);
        simd_train::row_pair_dots(pb, db, width, &mut dots[..rows]);
        simd_train::vectorized(
            #[inline(always)]
            || {
                let pairs = pb.chunks_exact(width).zip(db.chunks_exact_mut(width));
                for ((prow, drow), &dot) in pairs.zip(&dots) {
                    drow.iter_mut()
                        .zip(prow)
                        .for_each(|(d, &a)| *d = a * (*d - dot));
                }
            },
        );
    }
}

/// Rows per block of [`softmax_backward`].
const DOT_BLOCK: usize = 64;

/// Phase 2: the gradients of the three projections (before their biases and scale) into the
/// cache, one slice of the batch per thread.
pub fn core_backward(cache: &mut MhaCache) -> KernelResult<()> {
    let (shape, sizes) = cached_shape(cache)?;
    let Sizes { hk, hv, .. } = sizes;
    let (n, tq, tv) = (shape.batch, shape.tq, shape.tv);
    if cache.d_heads_out.len() != n * tq * hv || cache.probs.len() != n * shape.heads * sizes.scores
    {
        return Err(shape_err(OP, "backward before the output gradient"));
    }
    let slices = shape.slices();
    let lens = |per: usize| -> Vec<usize> { slices.iter().map(|(a, b)| (b - a) * per).collect() };
    let mut dq = std::mem::take(&mut cache.dq);
    let mut dk = std::mem::take(&mut cache.dk);
    let mut dv = std::mem::take(&mut cache.dv);
    let mut scratch = std::mem::take(&mut cache.slices);
    for (buf, len) in [
        (&mut dq, n * tq * hk),
        (&mut dk, n * tv * hk),
        (&mut dv, n * tv * hv),
    ] {
        ensure_len(buf, len);
        buf.truncate(len);
    }
    let per_slice = core_scratch_len(&shape, sizes);
    scratch.resize_with(slices.len(), Vec::new);
    for s in &mut scratch {
        ensure_len(s, per_slice);
    }
    let result = {
        let cache: &MhaCache = cache;
        let parts = [
            super::split_parts(&mut dq, &lens(tq * hk)),
            super::split_parts(&mut dk, &lens(tv * hk)),
            super::split_parts(&mut dv, &lens(tv * hv)),
        ];
        match parts {
            [Ok(dqs), Ok(dks), Ok(dvs)] => {
                let jobs: Vec<CoreJob<'_>> = slices
                    .iter()
                    .zip(dqs.into_iter().zip(dks).zip(dvs))
                    .zip(scratch.iter_mut())
                    .map(|((&(a, b), ((dq, dk), dv)), s)| CoreJob {
                        start: a,
                        len: b - a,
                        dq,
                        dk,
                        dv,
                        scratch: &mut s[..per_slice],
                    })
                    .collect();
                crate::runtime::kernels::run_slices(jobs, |job| {
                    core_slice(cache, &shape, sizes, job)
                })
            }
            _ => Err(shape_err(OP, "gradient slices")),
        }
    };
    cache.dq = dq;
    cache.dk = dk;
    cache.dv = dv;
    cache.slices = scratch;
    result
}

/// Gradients of one input projection (`kernel [d_in, width]`), overwritten.
pub struct ProjectionGrads<'a> {
    pub dkernel: &'a mut [f32],
    pub dbias: &'a mut [f32],
    /// `[rows, d_in]`, when the input needs a gradient.
    pub dx: Option<&'a mut [f32]>,
}

/// Which input projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Query,
    Key,
    Value,
}

/// Phase 3 for one projection: `dW = xᵀ·d`, `db = Σ d`, `dx = d·Wᵀ`, with `d` the cache's
/// gradient of that projection and `x` its input (`[N, T, d_in]`, flat).
pub fn projection_backward(
    cache: &MhaCache,
    which: Which,
    x: &[f32],
    p: Projection<'_>,
    grads: ProjectionGrads<'_>,
) -> KernelResult<()> {
    let (shape, Sizes { hk, hv, .. }) = cached_shape(cache)?;
    let (rows, width, d) = match which {
        Which::Query => (shape.batch * shape.tq, hk, &cache.dq),
        Which::Key => (shape.batch * shape.tv, hk, &cache.dk),
        Which::Value => (shape.batch * shape.tv, hv, &cache.dv),
    };
    let d_in = match which {
        Which::Query => shape.dq,
        Which::Key => shape.dk,
        Which::Value => shape.dv,
    };
    if d.len() != rows * width || x.len() != rows * d_in || grads.dbias.len() != width {
        return Err(shape_err(
            OP,
            format!("{which:?} projection gradient sizes"),
        ));
    }
    let dm = mat(OP, d, rows, width)?;
    let xm = mat(OP, x, rows, d_in)?;
    gemm(
        OP,
        1.0,
        &xm.t(),
        &dm,
        0.0,
        &mut mat_mut(OP, grads.dkernel, d_in, width)?,
    )?;
    column_sums(d, width, grads.dbias);
    if let Some(dx) = grads.dx {
        let wm = mat(OP, p.kernel, d_in, width)?;
        gemm(
            OP,
            1.0,
            &dm,
            &wm.t(),
            0.0,
            &mut mat_mut(OP, dx, rows, d_in)?,
        )?;
    }
    Ok(())
}
