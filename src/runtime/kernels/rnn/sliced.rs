//! A recurrent layer over a batch split between threads: each rayon thread runs the whole
//! recurrence ([`rnn_forward`], [`rnn_backward`]) for its own contiguous slice of samples,
//! with its own [`RnnCache`] and its GEMMs kept on that thread (`kernels::run_slices`).
//!
//! Samples are independent in a recurrent layer, so the forward outputs and the input
//! gradients are exactly those of one call over the whole batch with the same slice GEMM
//! sizes. The weight gradients are sums over samples: each slice computes its own, and they
//! are added in slice order into the first slice's, so a given thread count always gives
//! the same bits (a different count sums in a different order).
//!
//! The dropout masks of a training step are drawn here, for the whole batch before it is
//! split, and each slice runs with its rows of them.
//!
//! This is how training runs a recurrent layer: the per-timestep work (a small GEMM and the
//! gate arithmetic) is too short to split between threads step by step, but the recurrences
//! of different samples run side by side without any synchronisation until the end.

use ndarray::{ArrayView3, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Axis, IxDyn};

use rand_chacha::ChaCha8Rng;

use super::{rnn_backward, rnn_forward_run, RnnCache, RnnCell, RnnGrads, RnnParams, RnnRun};
use crate::runtime::kernels::dropout::fill_mask;
use crate::runtime::kernels::error::{shape_err, KernelResult};
use crate::runtime::kernels::linalg::ensure_len;

const OP: &str = "rnn";

/// Per-slice caches and the weight-gradient buffers of every slice after the first.
#[derive(Debug, Clone, Default)]
pub struct SlicedRnn {
    pub(super) caches: Vec<RnnCache>,
    /// The slices of the last forward: samples `start..end`.
    pub(super) slices: Vec<(usize, usize)>,
    /// `[dkernel, drecurrent, dbias]` of slices `1..`.
    pub(super) partial_grads: Vec<[Vec<f32>; 3]>,
    /// The dropout masks of the last training forward, for the whole batch (see [`RnnRun`]).
    pub(super) input_mask: Vec<f32>,
    pub(super) recurrent_mask: Vec<f32>,
    /// Set by a forward over token ids with the embedding folded in (`tokens_train.rs`): what
    /// its backward needs, and what tells the two backwards apart.
    pub(super) folded: Option<super::tokens_train::FoldedTokens>,
}

/// A layer's Keras options as the training forward applies them: `go_backwards`, and the
/// dropout rates with the step's stream to draw their masks from (training semantics only).
#[derive(Default)]
pub struct SlicedRun<'r> {
    pub go_backwards: bool,
    pub dropout: f32,
    pub recurrent_dropout: f32,
    pub rng: Option<&'r mut ChaCha8Rng>,
    /// `[N·T]` in time order: the steps a padding mask keeps (none: all), and whether masked
    /// steps output zeros (see [`RnnRun`]).
    pub keep: Option<&'r [bool]>,
    pub zero_masked_outputs: bool,
}

impl SlicedRnn {
    /// Draws the masks of `run` for a batch of `n` sequences of `f` features and `gu` gate
    /// units (`G·U`): the input's first (`[N, c·F]`, `c` = G with recurrent dropout, else 1),
    /// then the state's (`[N, G·U]`), each in row-major order from the stream, as Keras 3
    /// draws one mask per sequence (per gate when `recurrent_dropout` is set). Without a
    /// stream or with zero rates, no masks.
    pub(super) fn draw_masks(
        &mut self,
        run: &mut SlicedRun<'_>,
        cell: RnnCell,
        (n, f, gu): (usize, usize, usize),
    ) -> KernelResult<()> {
        self.input_mask.clear();
        self.recurrent_mask.clear();
        let Some(rng) = run.rng.as_deref_mut() else {
            return Ok(());
        };
        if run.dropout > 0.0 {
            let c = if run.recurrent_dropout > 0.0 {
                cell.gates()
            } else {
                1
            };
            self.input_mask.resize(n * c * f, 0.0);
            fill_mask(run.dropout, rng, &mut self.input_mask)?;
        }
        if run.recurrent_dropout > 0.0 {
            self.recurrent_mask.resize(n * gu, 0.0);
            fill_mask(run.recurrent_dropout, rng, &mut self.recurrent_mask)?;
        }
        Ok(())
    }
}

impl SlicedRnn {
    /// Empty; grows on first use and then stays.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the last forward ran over token ids with the embedding folded in.
    pub fn folded(&self) -> bool {
        self.folded.is_some()
    }
}

/// [`rnn_forward_run`] with the batch split between the pool's threads; the masks are drawn
/// for the whole batch first, so they do not depend on the thread count.
pub fn rnn_forward_sliced(
    cell: RnnCell,
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    mut run: SlicedRun<'_>,
    return_sequences: bool,
    state: &mut SlicedRnn,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let (n, t, f) = x.dim();
    if out.shape().first() != Some(&n) {
        return Err(shape_err(OP, "output batch differs from the input's"));
    }
    state.folded = None;
    state.draw_masks(&mut run, cell, (n, f, p.recurrent.dim().1))?;
    let per_sample = |mask: &[f32]| mask.len().checked_div(n).unwrap_or(0);
    let (in_width, rec_width) = (
        per_sample(&state.input_mask),
        per_sample(&state.recurrent_mask),
    );
    state.slices = crate::runtime::kernels::batch_ranges(n, rayon::current_num_threads());
    state
        .caches
        .resize_with(state.slices.len(), RnnCache::default);
    let mut jobs = Vec::with_capacity(state.slices.len());
    let (mut x_rest, mut out_rest) = (x, out);
    for (&(start, end), cache) in state.slices.iter().zip(state.caches.iter_mut()) {
        let len = end - start;
        let (xs, x_later) = x_rest.split_at(Axis(0), len);
        let (os, o_later) = out_rest.split_at(Axis(0), len);
        (x_rest, out_rest) = (x_later, o_later);
        let slice_run = RnnRun {
            go_backwards: run.go_backwards,
            input_mask: mask_of(&state.input_mask, in_width, (start, end)),
            recurrent_mask: mask_of(&state.recurrent_mask, rec_width, (start, end)),
            keep: match run.keep {
                Some(keep) => Some(
                    keep.get(start * t..end * t)
                        .ok_or_else(|| shape_err(OP, "padding mask shorter than the batch"))?,
                ),
                None => None,
            },
            zero_masked_outputs: run.zero_masked_outputs,
        };
        jobs.push((xs, os, cache, slice_run));
    }
    crate::runtime::kernels::run_slices(jobs, |(xs, os, cache, slice_run)| {
        rnn_forward_run(cell, xs, p, &slice_run, return_sequences, cache, os)
    })
}

/// The rows `start..end` of a per-sample mask of `width` values each (none when empty).
pub(super) fn mask_of(mask: &[f32], width: usize, (start, end): (usize, usize)) -> Option<&[f32]> {
    (!mask.is_empty())
        .then(|| mask.get(start * width..end * width))
        .flatten()
}

/// [`rnn_backward`] of the last [`rnn_forward_sliced`] on the same `x`, slice by slice; the
/// weight gradients of the slices are summed in slice order.
pub fn rnn_backward_sliced(
    cell: RnnCell,
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    state: &mut SlicedRnn,
    dy: ArrayViewD<'_, f32>,
    grads: RnnGrads<'_>,
) -> KernelResult<()> {
    let RnnGrads {
        dx,
        dkernel,
        drecurrent,
        dbias,
    } = grads;
    let total: usize = state.slices.iter().map(|&(start, end)| end - start).sum();
    if total != x.dim().0 || state.caches.len() < state.slices.len() || state.folded.is_some() {
        return Err(shape_err(
            OP,
            "backward of a batch the forward did not split",
        ));
    }
    let extra = state.slices.len().saturating_sub(1);
    state.partial_grads.resize_with(extra, Default::default);
    let sizes = [dkernel.len(), drecurrent.len(), dbias.len()];
    for bufs in &mut state.partial_grads {
        for (buf, &len) in bufs.iter_mut().zip(&sizes) {
            ensure_len(buf, len);
        }
    }
    let (k_dim, r_dim) = (dkernel.raw_dim(), drecurrent.raw_dim());
    let b_dim = IxDyn(dbias.shape());
    let (mut dkernel, mut drecurrent, mut dbias) = (dkernel, drecurrent, dbias);
    {
        let mut jobs = Vec::with_capacity(state.slices.len());
        let (mut x_rest, mut dy_rest, mut dx_rest) = (x, dy, dx);
        // The first slice writes the caller's buffers; the others their own, added below.
        let mut first = Some((dkernel.view_mut(), drecurrent.view_mut(), dbias.view_mut()));
        let mut partials = state.partial_grads.iter_mut();
        for (&(start, end), cache) in state.slices.iter().zip(state.caches.iter_mut()) {
            let len = end - start;
            let (xs, x_later) = x_rest.split_at(Axis(0), len);
            let (dys, dy_later) = dy_rest.split_at(Axis(0), len);
            let (dxs, dx_later) = dx_rest.split_at(Axis(0), len);
            (x_rest, dy_rest, dx_rest) = (x_later, dy_later, dx_later);
            let (dk, dr, db) = if let Some(g) = first.take() {
                g
            } else {
                let [k, r, b] = partials
                    .next()
                    .ok_or_else(|| shape_err(OP, "missing partial gradients"))?;
                let err = |e: ndarray::ShapeError| shape_err(OP, e.to_string());
                (
                    ArrayViewMut2::from_shape(k_dim, &mut k[..sizes[0]]).map_err(err)?,
                    ArrayViewMut2::from_shape(r_dim, &mut r[..sizes[1]]).map_err(err)?,
                    ArrayViewMutD::from_shape(b_dim.clone(), &mut b[..sizes[2]]).map_err(err)?,
                )
            };
            let g = RnnGrads {
                dx: dxs,
                dkernel: dk,
                drecurrent: dr,
                dbias: db,
            };
            jobs.push((xs, dys, g, cache));
        }
        crate::runtime::kernels::run_slices(jobs, |(xs, dys, g, cache)| {
            rnn_backward(cell, xs, p, cache, dys, g)
        })?;
    }
    for [k, r, b] in &state.partial_grads {
        dkernel.iter_mut().zip(k).for_each(|(d, &v)| *d += v);
        drecurrent.iter_mut().zip(r).for_each(|(d, &v)| *d += v);
        dbias.iter_mut().zip(b).for_each(|(d, &v)| *d += v);
    }
    Ok(())
}
