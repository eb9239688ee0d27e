//! Training a recurrent layer over token ids with its embedding folded into the input
//! projection: the trainer's form of `fold-embedding-projection` (which rewrites inference
//! plans only), for an embedding whose only reader is the layer.
//!
//! Forward: `P = table·W + b_in` (`[V, G·U]`, one GEMM over the vocabulary), then each step's
//! `x_t·W + b_in` is row `ids[n, t]` of `P`, gathered instead of projected, and the shared
//! recurrence runs on it ([`super::train::recur`]) one batch slice per thread, as
//! [`rnn_forward_sliced`](super::rnn_forward_sliced) does. Backward runs the same steps
//! through time ([`super::train::backward_recurrent`]); the input side then sums each
//! token's pre-activation gradients into `dP` (`[V, G·U]`, in the batch's row order), and
//! `dW = tableᵀ·dP`, `d table = dP·Wᵀ`, `d b_in = Σ dP`. Both sides multiply `V` rows
//! instead of `N·T`, so the fold pays when the vocabulary is at most the batch's token count
//! ([`fold_pays`]). The sums are those of the unfolded layer and embedding in another order:
//! the same values up to rounding, not the same bits.
//!
//! A folded layer takes no input dropout (it masks `x_t`, which the fold never forms) and
//! does not go backwards; the caller keeps those on the unfolded path.

use ndarray::{ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Axis};

use super::sliced::{mask_of, SlicedRnn, SlicedRun};
use super::train::{backward_recurrent, recur};
use super::{
    output_shape, project, split_bias, token_rows, RnnCache, RnnCell, RnnDims, RnnParams, RnnRun,
    OP,
};
use crate::runtime::kernels::embedding::EmbeddingId;
use crate::runtime::kernels::error::{
    checked_product, expect_shape, param_err, shape_err, KernelResult,
};
use crate::runtime::kernels::linalg::{column_sums, ensure_len, flat, flat_mut, gemm, mat};

/// What a folded forward keeps for its backward: the vocabulary and `P`'s width, each
/// token's table row (`[N·T]`, the whole batch in row order), and `P` and `dP` as buffers.
#[derive(Debug, Clone, Default)]
pub struct FoldedTokens {
    vocab: usize,
    gu: usize,
    rows: Vec<usize>,
    projection: Vec<f32>,
    dprojection: Vec<f32>,
}

/// The weights a folded layer reads: the embedding's table `[V, F]` and the layer's own
/// (`kernel` `[F, G·U]`).
pub struct FoldedParams<'a> {
    pub table: ArrayView2<'a, f32>,
    pub layer: RnnParams<'a>,
}

/// The gradients a folded backward writes (each overwritten): the table's when it is
/// trained, and the layer's.
pub struct FoldedGrads<'a> {
    pub dtable: Option<ArrayViewMut2<'a, f32>>,
    pub dkernel: ArrayViewMut2<'a, f32>,
    pub drecurrent: ArrayViewMut2<'a, f32>,
    pub dbias: ArrayViewMutD<'a, f32>,
}

/// Whether folding a `vocab`-row table does less work than projecting `n·t` token rows.
pub fn fold_pays(vocab: usize, (n, t): (usize, usize)) -> bool {
    n.checked_mul(t).is_some_and(|rows| vocab <= rows)
}

/// The sizes of a folded call, checked: ids `[N, T]`, table `[V, F]`, the layer's weights.
fn dims(cell: RnnCell, (n, t): (usize, usize), w: &FoldedParams<'_>) -> KernelResult<RnnDims> {
    let (vocab, f) = w.table.dim();
    let (kf, gu) = w.layer.kernel.dim();
    let g = cell.gates();
    if kf != f || gu % g != 0 || vocab == 0 {
        return Err(shape_err(
            OP,
            format!(
                "kernel {:?} does not fit an embedding table {:?} and {g} gates",
                w.layer.kernel.shape(),
                w.table.shape()
            ),
        ));
    }
    let u = gu / g;
    expect_shape(OP, "recurrent_kernel", w.layer.recurrent.shape(), &[u, gu])?;
    expect_shape(OP, "bias", w.layer.bias.shape(), &cell.bias_shape(u))?;
    if n == 0 || t == 0 || u == 0 {
        return Err(param_err(OP, "batch, timesteps and units must be positive"));
    }
    Ok(RnnDims { n, t, f, u })
}

/// The training forward of a layer over token ids with its embedding folded in, one batch
/// slice per thread; keeps in `state` what [`rnn_backward_tokens_sliced`] needs. An id
/// outside the table is [`KernelError::IdOutOfRange`](crate::runtime::kernels::KernelError)
/// at its position in the batch.
pub fn rnn_forward_tokens_sliced<I: EmbeddingId>(
    cell: RnnCell,
    ids: ArrayView2<'_, I>,
    w: &FoldedParams<'_>,
    mut run: SlicedRun<'_>,
    return_sequences: bool,
    state: &mut SlicedRnn,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    if run.dropout > 0.0 || run.go_backwards {
        return Err(param_err(
            OP,
            "a folded embedding takes no input dropout and does not go backwards",
        ));
    }
    let d = dims(cell, ids.dim(), w)?;
    expect_shape(OP, "out", out.shape(), &output_shape(&d, return_sequences))?;
    let gu = d.gu(cell);
    let vocab = w.table.dim().0;
    let (in_bias, rec_bias) = split_bias(cell, flat(OP, "bias", &w.layer.bias)?, gu)?;
    let mut folded = state.folded.take().unwrap_or_default();
    token_rows(&ids, vocab, &mut folded.rows)?;
    ensure_len(&mut folded.projection, checked_product(OP, &[vocab, gu])?);
    let table = flat(OP, "table", &w.table)?;
    project(
        table,
        (vocab, d.f),
        &w.layer.kernel,
        in_bias,
        &mut folded.projection,
    )?;
    (folded.vocab, folded.gu) = (vocab, gu);
    state.draw_masks(&mut run, cell, (d.n, d.f, gu))?;
    let rec_width = state.recurrent_mask.len().checked_div(d.n).unwrap_or(0);
    state.slices = crate::runtime::kernels::batch_ranges(d.n, rayon::current_num_threads());
    state
        .caches
        .resize_with(state.slices.len(), RnnCache::default);
    let mut jobs = Vec::with_capacity(state.slices.len());
    let mut out_rest = out;
    for (&(start, end), cache) in state.slices.iter().zip(state.caches.iter_mut()) {
        let (os, later) = out_rest.split_at(Axis(0), end - start);
        out_rest = later;
        let rows = folded
            .rows
            .get(start * d.t..end * d.t)
            .ok_or_else(|| shape_err(OP, "token rows shorter than the batch"))?;
        let slice_run = RnnRun {
            recurrent_mask: mask_of(&state.recurrent_mask, rec_width, (start, end)),
            keep: match run.keep {
                Some(keep) => Some(
                    keep.get(start * d.t..end * d.t)
                        .ok_or_else(|| shape_err(OP, "padding mask shorter than the batch"))?,
                ),
                None => None,
            },
            zero_masked_outputs: run.zero_masked_outputs,
            ..RnnRun::default()
        };
        jobs.push((
            RnnDims {
                n: end - start,
                ..d
            },
            rows,
            os,
            cache,
            slice_run,
        ));
    }
    let projection = &folded.projection;
    let recurrent = &w.layer.recurrent;
    let done = crate::runtime::kernels::run_slices(jobs, |(d, rows, os, cache, slice_run)| {
        cache.prepare(cell, d, return_sequences)?;
        cache.set_run(cell, &d, &slice_run)?;
        gather(projection, rows, gu, &mut cache.xw)?;
        recur(cell, &d, recurrent, rec_bias, return_sequences, cache, os)
    });
    state.folded = Some(folded);
    done
}

/// `xw`'s row `i` ← row `rows[i]` of the `gu`-wide `projection`.
fn gather(projection: &[f32], rows: &[usize], gu: usize, xw: &mut [f32]) -> KernelResult<()> {
    let outside = || shape_err(OP, "token row outside the projection");
    for (dst, &r) in xw.chunks_exact_mut(gu.max(1)).zip(rows) {
        let at = r.checked_mul(gu).ok_or_else(outside)?;
        dst.copy_from_slice(projection.get(at..at + gu).ok_or_else(outside)?);
    }
    Ok(())
}

/// Backpropagation through time for the last [`rnn_forward_tokens_sliced`], slice by slice,
/// then the input side over the vocabulary (see the module doc). `dU` and a GRU's recurrent
/// bias are summed over the slices in slice order, as the unfolded layer does.
pub fn rnn_backward_tokens_sliced(
    cell: RnnCell,
    w: &FoldedParams<'_>,
    state: &mut SlicedRnn,
    dy: ArrayViewD<'_, f32>,
    grads: FoldedGrads<'_>,
) -> KernelResult<()> {
    let FoldedGrads {
        dtable,
        mut dkernel,
        mut drecurrent,
        mut dbias,
    } = grads;
    let Some(mut folded) = state.folded.take() else {
        return Err(param_err(OP, "a folded backward without its forward"));
    };
    let done = backward(cell, w, state, &folded, dy, (&mut drecurrent, &mut dbias));
    let input_side =
        done.and_then(|()| input_side(state, &mut folded, w, dtable, &mut dkernel, &mut dbias));
    state.folded = Some(folded);
    input_side
}

/// Through time on every slice: `dU` and a GRU's recurrent bias gradient summed over the
/// slices, each slice's `dz_in` left in its cache.
fn backward(
    cell: RnnCell,
    w: &FoldedParams<'_>,
    state: &mut SlicedRnn,
    folded: &FoldedTokens,
    dy: ArrayViewD<'_, f32>,
    (drecurrent, dbias): (&mut ArrayViewMut2<'_, f32>, &mut ArrayViewMutD<'_, f32>),
) -> KernelResult<()> {
    let n: usize = state.slices.iter().map(|&(start, end)| end - start).sum();
    let d = dims(cell, (n, folded_t(folded, state)?), w)?;
    if state.caches.len() < state.slices.len() || folded.vocab != w.table.dim().0 {
        return Err(shape_err(
            OP,
            "backward of a batch the forward did not fold",
        ));
    }
    expect_shape(OP, "dbias", dbias.shape(), w.layer.bias.shape())?;
    let gu = folded.gu;
    let extra = state.slices.len().saturating_sub(1);
    state.partial_grads.resize_with(extra, Default::default);
    let sizes = [drecurrent.len(), dbias.len()];
    for [_, r, b] in &mut state.partial_grads {
        ensure_len(r, sizes[0]);
        ensure_len(b, sizes[1]);
    }
    let r_dim = drecurrent.raw_dim();
    let db = flat_mut(OP, "dbias", dbias)?;
    let db_rec = db.get_mut(gu..).unwrap_or_default();
    {
        let mut jobs = Vec::with_capacity(state.slices.len());
        let mut first = Some((drecurrent.view_mut(), db_rec));
        let mut partials = state.partial_grads.iter_mut();
        let mut dy_rest = dy;
        for (&(start, end), cache) in state.slices.iter().zip(state.caches.iter_mut()) {
            let (dys, later) = dy_rest.split_at(Axis(0), end - start);
            dy_rest = later;
            let (dr, dbr) = if let Some(g) = first.take() {
                g
            } else {
                let [_, r, b] = partials
                    .next()
                    .ok_or_else(|| shape_err(OP, "missing partial gradients"))?;
                let view = ArrayViewMut2::from_shape(r_dim, &mut r[..sizes[0]])
                    .map_err(|e| shape_err(OP, e.to_string()))?;
                (view, b.get_mut(gu..sizes[1]).unwrap_or_default())
            };
            jobs.push((
                RnnDims {
                    n: end - start,
                    ..d
                },
                dys,
                dr,
                dbr,
                cache,
            ));
        }
        crate::runtime::kernels::run_slices(jobs, |(d, dys, mut dr, dbr, cache)| {
            backward_recurrent(cell, &d, &w.layer, cache, dys, (&mut dr, dbr))
        })?;
    }
    for [_, r, b] in &state.partial_grads {
        drecurrent.iter_mut().zip(r).for_each(|(d, &v)| *d += v);
        let db = flat_mut(OP, "dbias", dbias)?;
        let rec = db.get_mut(gu..).unwrap_or_default();
        rec.iter_mut()
            .zip(b.get(gu..).unwrap_or_default())
            .for_each(|(d, &v)| *d += v);
    }
    Ok(())
}

/// `dP` from every slice's `dz_in` (rows summed per token, in the batch's row order, so the
/// sums do not depend on the slicing), then `dW = tableᵀ·dP`, `d b_in = Σ dP` and, when the
/// table is trained, `d table = dP·Wᵀ`.
fn input_side(
    state: &SlicedRnn,
    folded: &mut FoldedTokens,
    w: &FoldedParams<'_>,
    dtable: Option<ArrayViewMut2<'_, f32>>,
    dkernel: &mut ArrayViewMut2<'_, f32>,
    dbias: &mut ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let (vocab, gu, f) = (folded.vocab, folded.gu, w.table.dim().1);
    expect_shape(OP, "dkernel", dkernel.shape(), w.layer.kernel.shape())?;
    let len = checked_product(OP, &[vocab, gu])?;
    let t = folded_t(folded, state)?;
    ensure_len(&mut folded.dprojection, len);
    let dp = &mut folded.dprojection[..len];
    dp.fill(0.0);
    let outside = || shape_err(OP, "token row outside the projection");
    for (&(start, end), cache) in state.slices.iter().zip(&state.caches) {
        let rows = folded.rows.get(start * t..end * t).ok_or_else(outside)?;
        let dz = cache
            .dz_in
            .get(..rows.len() * gu)
            .ok_or_else(|| shape_err(OP, "pre-activation gradients shorter than the slice"))?;
        for (src, &r) in dz.chunks_exact(gu.max(1)).zip(rows) {
            let at = r.checked_mul(gu).ok_or_else(outside)?;
            let dst = dp.get_mut(at..at + gu).ok_or_else(outside)?;
            dst.iter_mut().zip(src).for_each(|(a, &b)| *a += b);
        }
    }
    let dpm = mat(OP, dp, vocab, gu)?;
    gemm(OP, 1.0, &w.table.t(), &dpm, 0.0, dkernel)?;
    let db = flat_mut(OP, "dbias", dbias)?;
    let db_in = db
        .get_mut(..gu)
        .ok_or_else(|| shape_err(OP, "bias gradient too short"))?;
    column_sums(dp, gu, db_in);
    if let Some(mut dtable) = dtable {
        expect_shape(OP, "dtable", dtable.shape(), &[vocab, f])?;
        gemm(OP, 1.0, &dpm, &w.layer.kernel.t(), 0.0, &mut dtable)?;
    }
    Ok(())
}

/// The timesteps of the last folded forward.
fn folded_t(folded: &FoldedTokens, state: &SlicedRnn) -> KernelResult<usize> {
    let n: usize = state.slices.iter().map(|&(start, end)| end - start).sum();
    folded
        .rows
        .len()
        .checked_div(n)
        .ok_or_else(|| shape_err(OP, "an empty folded batch"))
}
