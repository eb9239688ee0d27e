//! Recurrent layers (SimpleRNN, LSTM, GRU) with Keras semantics, forward and BPTT backward.
//!
//! Input `x: [N, T, F]`; kernel `[F, G·U]`, recurrent kernel `[U, G·U]`; bias `[U]` (simple),
//! `[4U]` (LSTM, gates i, f, c, o), `[2, 3U]` (GRU `reset_after=True`, gates z, r, h; row 0
//! input bias, row 1 recurrent bias) or `[3U]` (GRU `reset_after=False`,
//! [`RnnCell::GruResetBefore`]). Initial states are zero. Output `[N, T, U]` with
//! `return_sequences`, else `[N, U]` (the last step).
//!
//! The driver here is shared: one GEMM projects every timestep at once (`X·W + b` into
//! `[N·T, G·U]`), then per step one GEMM `h_{t−1}·U` over the whole batch and the cell's
//! element-wise update (`simple.rs`, `lstm.rs`, `gru.rs`, `gru_before.rs`, which multiplies
//! `r⊙h_{t−1}` by its candidate block itself); `train.rs` holds it. An [`RnnRun`] adds Keras's
//! `go_backwards` (the steps reversed into the cache) and a training step's dropout masks
//! (`masks.rs`: the masked copies and per-gate products). The forward keeps in an
//! [`RnnCache`] exactly what backward needs. Backward runs the steps in reverse, each step
//! producing pre-activation gradients and one GEMM `dh_{t−1} += dz_t·Uᵀ`; the weight gradients
//! then come from three GEMMs over all timesteps: `dW = Xᵀ·dZ`, `dU = H_prevᵀ·dZ_rec`,
//! `dX = dZ·Wᵀ`. The cache is reused between calls, so a steady state allocates nothing.
//!
//! Other entry points: [`rnn_infer`] (the interpreter; [`rnn_infer_run`] going backwards) runs
//! an LSTM over a batch without keeping anything for backward (`infer.rs`); [`rnn_infer_tokens`] (the interpreter's
//! `embedded_*` steps) reads token ids, taking each step's `x_t·W + b` as a row of a table
//! computed once per weights by [`embedding_projection`] (a gather instead of the projection
//! GEMM, through the same recurrence); [`rnn_forward_sliced`] and [`rnn_backward_sliced`] (the
//! trainer) run the driver above on one batch slice per thread (`sliced.rs`);
//! [`rnn_forward_tokens_sliced`] and [`rnn_backward_tokens_sliced`] train it over token ids
//! with the embedding's table folded into the projection (`tokens_train.rs`).

mod gru;
mod gru_before;
mod infer;
mod lstm;
mod masks;
mod padding;
mod simple;
mod sliced;
mod tokens_train;
mod train;

pub use padding::keep_from_ids;
pub use sliced::{rnn_backward_sliced, rnn_forward_sliced, SlicedRnn, SlicedRun};
pub use tokens_train::{
    fold_pays, rnn_backward_tokens_sliced, rnn_forward_tokens_sliced, FoldedGrads, FoldedParams,
};
pub use train::{rnn_backward, rnn_forward, rnn_forward_run};

use ndarray::{ArrayView2, ArrayView3, ArrayViewD, ArrayViewMut2, ArrayViewMut3, ArrayViewMutD};

use super::embedding::{row_index, EmbeddingId};
use super::error::{checked_product, expect_shape, param_err, shape_err, KernelResult};
use super::linalg::{ensure_len, flat, gemm, mat, mat_mut};

const OP: &str = "rnn";

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RnnCell {
    /// `h = tanh(x·W + h·U + b)`.
    SimpleRnn,
    /// Keras LSTM, gate order i, f, c, o.
    Lstm,
    /// Keras GRU with `reset_after=True`, gate order z, r, h.
    Gru,
    /// Keras GRU with `reset_after=False`: `ĥ = tanh(x_h + (r⊙h)·U_h)`, one bias `[3U]`
    /// (`gru_before.rs`).
    GruResetBefore,
}

impl RnnCell {
    /// Gate blocks per unit (`G`).
    pub fn gates(self) -> usize {
        match self {
            Self::SimpleRnn => 1,
            Self::Lstm => 4,
            Self::Gru | Self::GruResetBefore => 3,
        }
    }

    /// The bias shape for `units`.
    pub fn bias_shape(self, units: usize) -> Vec<usize> {
        match self {
            Self::SimpleRnn => vec![units],
            Self::Lstm => vec![4 * units],
            Self::Gru => vec![2, 3 * units],
            Self::GruResetBefore => vec![3 * units],
        }
    }

    /// Whether backward keeps the recurrent side's pre-activation gradients apart from the
    /// input side's (`dz_rec`; only a reset-after GRU's differ).
    fn separate_recurrent_grads(self) -> bool {
        self == Self::Gru
    }

    /// The gate blocks whose recurrent product `h_{t−1}·U` the shared driver computes: all but
    /// a reset-before GRU's candidate block, which its cell multiplies by `r⊙h_{t−1}` itself.
    fn driver_blocks(self) -> usize {
        match self {
            Self::GruResetBefore => 2,
            _ => self.gates(),
        }
    }
}

/// How one call runs beyond its weights: Keras's `go_backwards` (the steps from the last to
/// the first, the outputs in that order), and a training forward's dropout masks (each element
/// 0 or `1/(1 − rate)`, one mask per sequence for every step).
#[derive(Debug, Clone, Copy, Default)]
pub struct RnnRun<'a> {
    pub go_backwards: bool,
    /// `[N, c·F]`: per sample `c` masks of its features, `c` being 1 (one mask for every gate)
    /// or `G` (one per gate, in gate order).
    pub input_mask: Option<&'a [f32]>,
    /// `[N, G·U]`: per sample one mask of the state per gate.
    pub recurrent_mask: Option<&'a [f32]>,
    /// `[N·T]` in time order: the steps a padding mask keeps (`padding.rs`); none: all.
    pub keep: Option<&'a [bool]>,
    /// Keras's `zero_output_for_mask`: a masked step outputs zeros, not the previous output.
    pub zero_masked_outputs: bool,
}

/// Sizes of one recurrent call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RnnDims {
    pub n: usize,
    pub t: usize,
    pub f: usize,
    pub u: usize,
}

impl RnnDims {
    fn gu(&self, cell: RnnCell) -> usize {
        self.u * cell.gates()
    }
}

/// Weights of a recurrent layer (Keras layouts, see the module doc).
#[derive(Debug, Clone)]
pub struct RnnParams<'a> {
    pub kernel: ArrayView2<'a, f32>,
    pub recurrent: ArrayView2<'a, f32>,
    pub bias: ArrayViewD<'a, f32>,
}

/// Gradient buffers written by [`rnn_backward`] (each overwritten).
pub struct RnnGrads<'a> {
    pub dx: ArrayViewMut3<'a, f32>,
    pub dkernel: ArrayViewMut2<'a, f32>,
    pub drecurrent: ArrayViewMut2<'a, f32>,
    pub dbias: ArrayViewMutD<'a, f32>,
}

/// What the forward keeps for backward, plus scratch; reuse it across calls.
///
/// Per-timestep buffers are laid out `[N, T, ·]` (row `n·T + t`), matching `x`.
#[derive(Debug, Clone, Default)]
pub struct RnnCache {
    config: Option<(RnnCell, RnnDims, bool)>,
    /// `X·W + b_in`, `[N·T, G·U]`.
    xw: Vec<f32>,
    /// `h_{t−1}` for every step, `[N·T, U]`.
    h_prev: Vec<f32>,
    /// LSTM: `c_{t−1}` for every step, `[N·T, U]`.
    c_prev: Vec<f32>,
    /// Activated gates, `[N·T, G·U]`.
    gates: Vec<f32>,
    /// Per-cell extra: LSTM `tanh(c_t)`, GRU recurrent h-part, simple `h_t`; `[N·T, U]`.
    aux: Vec<f32>,
    /// The table row of every token of a token layer's input, `[N·T]`.
    token_rows: Vec<usize>,
    /// Per-step scratch: `h_{t−1}·U` `[N, G·U]`, new state `[N, U]`.
    zrec: Vec<f32>,
    h_new: Vec<f32>,
    /// The per-step products' weights in 16-column panels (`kernels::panels`): inference's
    /// `[W; U]` or `U`, the training forward's driver blocks of `U`, backward's transpose.
    panels: Vec<f32>,
    /// Backward: pre-activation gradients (input side, recurrent side), `[N·T, G·U]`.
    dz_in: Vec<f32>,
    dz_rec: Vec<f32>,
    /// Backward carries `dh`, `dc`, `[N, U]`.
    dh: Vec<f32>,
    dc: Vec<f32>,
    /// Backward: the driver's blocks of `U` transposed row-major, `[B·U, U]` (copied once per
    /// call, not at every step).
    recurrent_t: Vec<f32>,
    /// The run of the last training forward (`go_backwards`, masks), for backward.
    go_backwards: bool,
    /// `[N·T, F]`: the input in processing order when `go_backwards` reversed it.
    x_rev: Vec<f32>,
    /// The masks of [`RnnRun`] (empty when not used) and the input's mask count `c`.
    input_mask: Vec<f32>,
    input_masks: usize,
    recurrent_mask: Vec<f32>,
    /// Scratch: masked copies of the input `[N·T, F]` (two) and of the state `[N·T, U]`.
    masked: Vec<f32>,
    masked_grad: Vec<f32>,
    masked_state: Vec<f32>,
    /// The padding mask of the call in processing order (empty: every step kept), whether
    /// masked steps output zeros, and backward's saved `dh`, `dc` of masked samples.
    keep: Vec<bool>,
    zero_masked: bool,
    carried: Vec<f32>,
}

impl RnnCache {
    /// An empty cache; it grows on first use and then stays.
    pub fn new() -> Self {
        Self::default()
    }

    fn prepare(&mut self, cell: RnnCell, d: RnnDims, return_sequences: bool) -> KernelResult<()> {
        let rows = checked_product(OP, &[d.n, d.t])?;
        let wide = checked_product(OP, &[rows, d.gu(cell)])?;
        let narrow = checked_product(OP, &[rows, d.u])?;
        for (buf, len) in [
            (&mut self.xw, wide),
            (&mut self.gates, wide),
            (&mut self.h_prev, narrow),
            (&mut self.aux, narrow),
        ] {
            ensure_len(buf, len);
        }
        if cell == RnnCell::Lstm {
            ensure_len(&mut self.c_prev, narrow);
        }
        ensure_len(&mut self.zrec, d.n * d.gu(cell));
        ensure_len(&mut self.h_new, d.n * d.u);
        self.config = Some((cell, d, return_sequences));
        Ok(())
    }
}

fn validate(cell: RnnCell, x: &ArrayView3<'_, f32>, p: &RnnParams<'_>) -> KernelResult<RnnDims> {
    let (n, t, f) = x.dim();
    let g = cell.gates();
    let (kf, kcols) = p.kernel.dim();
    if kf != f || kcols % g != 0 {
        return Err(shape_err(
            OP,
            format!(
                "kernel {:?} does not fit {f} features and {g} gates",
                p.kernel.shape()
            ),
        ));
    }
    let u = kcols / g;
    expect_shape(OP, "recurrent_kernel", p.recurrent.shape(), &[u, g * u])?;
    expect_shape(OP, "bias", p.bias.shape(), &cell.bias_shape(u))?;
    if n == 0 || t == 0 || u == 0 {
        return Err(param_err(OP, "batch, timesteps and units must be positive"));
    }
    Ok(RnnDims { n, t, f, u })
}

fn output_shape(d: &RnnDims, return_sequences: bool) -> Vec<usize> {
    if return_sequences {
        vec![d.n, d.t, d.u]
    } else {
        vec![d.n, d.u]
    }
}

/// The bias split into its input part (added to `x·W`) and a GRU's recurrent part (row 1,
/// added to `h·U` before the reset gate; empty for the other cells).
fn split_bias(cell: RnnCell, bias: &[f32], gu: usize) -> KernelResult<(&[f32], &[f32])> {
    let at = if cell == RnnCell::Gru { gu } else { bias.len() };
    // (A reset-before GRU has one input bias: the whole vector, as a simple RNN or an LSTM.)
    if at != gu || bias.len() < gu {
        return Err(shape_err(
            OP,
            format!("a bias of {} for {gu} gate units", bias.len()),
        ));
    }
    Ok(bias.split_at(at))
}

/// `xw ← x·W + b_in` for the `rows` rows of `f` features in `x`: the input projection of every
/// timestep at once, and of every token by [`embedding_projection`] (the same arithmetic).
fn project(
    x: &[f32],
    (rows, f): (usize, usize),
    kernel: &ArrayView2<'_, f32>,
    in_bias: &[f32],
    xw: &mut [f32],
) -> KernelResult<()> {
    let gu = in_bias.len();
    {
        let xm = mat(OP, x, rows, f)?;
        let mut out = mat_mut(OP, xw, rows, gu)?;
        gemm(OP, 1.0, &xm, kernel, 0.0, &mut out)?;
    }
    let len = checked_product(OP, &[rows, gu])?;
    let xw = xw
        .get_mut(..len)
        .ok_or_else(|| shape_err(OP, "projection buffer too small"))?;
    for row in xw.chunks_exact_mut(gu.max(1)) {
        row.iter_mut().zip(in_bias).for_each(|(v, &b)| *v += b);
    }
    Ok(())
}

/// Below this many sequences an LSTM's inference over features runs [`rnn_forward`]'s
/// recurrence: one matrix-vector product per step either way, and projecting every timestep's
/// input at once is the better GEMM. (Over tokens there is no projection to batch, so every
/// batch size takes `infer.rs`'s loop: see [`rnn_infer_tokens`].)
const FEW: usize = 4;

/// Forward pass for inference only: like [`rnn_forward`], but an LSTM over a batch keeps
/// nothing for a backward pass (see `infer.rs`), so `cache` cannot serve [`rnn_backward`]
/// afterwards.
pub fn rnn_infer(
    cell: RnnCell,
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    return_sequences: bool,
    cache: &mut RnnCache,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    match cell {
        RnnCell::Lstm if x.dim().0 >= FEW => infer::lstm_infer(x, p, return_sequences, cache, out),
        _ => rnn_forward(cell, x, p, return_sequences, cache, out),
    }
}

/// Inference with every option of `run` (its dropout masks unset): [`rnn_infer_run`], or
/// with a padding mask the training driver's recurrence ([`rnn_forward_run`]).
pub fn rnn_infer_masked(
    cell: RnnCell,
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    run: &RnnRun<'_>,
    return_sequences: bool,
    cache: &mut RnnCache,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    if run.keep.is_none() {
        return rnn_infer_run(cell, x, p, run.go_backwards, return_sequences, cache, out);
    }
    rnn_forward_run(cell, x, p, run, return_sequences, cache, out)
}

/// [`rnn_infer`] with Keras's `go_backwards`: the steps of each sequence from the last to the
/// first (a reversed copy of `x`), the outputs in that order, as Keras returns them.
pub fn rnn_infer_run(
    cell: RnnCell,
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    go_backwards: bool,
    return_sequences: bool,
    cache: &mut RnnCache,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    if !go_backwards {
        return rnn_infer(cell, x, p, return_sequences, cache, out);
    }
    let mut reversed = std::mem::take(&mut cache.x_rev);
    reversed.clear();
    reversed.extend_from_slice(flat(OP, "x", &x)?);
    masks::reverse_steps(&mut reversed, x.dim());
    let result = ArrayView3::from_shape(x.dim(), &reversed[..])
        .map_err(|e| shape_err(OP, e.to_string()))
        .and_then(|xr| rnn_infer(cell, xr, p, return_sequences, cache, out));
    cache.x_rev = reversed;
    result
}

/// Weights of a recurrent layer over token ids ([`rnn_infer_tokens`]): the projection table
/// `[V, G·U]` of [`embedding_projection`] in place of the kernel, Keras layouts otherwise.
#[derive(Debug, Clone)]
pub struct RnnTokenParams<'a> {
    pub projection: ArrayView2<'a, f32>,
    pub recurrent: ArrayView2<'a, f32>,
    /// The layer's own bias; only a GRU reads it (its recurrent row 1), the input bias being
    /// inside `projection`.
    pub bias: ArrayViewD<'a, f32>,
}

/// `table·kernel + in_bias` (`[V, G·U]`): the input projection of every row of an embedding
/// table `[V, F]` for a recurrent layer with `kernel` `[F, G·U]` and input bias `in_bias`
/// (`[G·U]`: a simple RNN's or LSTM's whole bias, a GRU's row 0). Computed like
/// [`rnn_forward`]'s projection of its inputs (the same GEMM, then the bias), so row `id` is what
/// that step gives for `table[id]`.
pub fn embedding_projection(
    table: ArrayView2<'_, f32>,
    kernel: ArrayView2<'_, f32>,
    in_bias: &[f32],
) -> KernelResult<ndarray::Array2<f32>> {
    let (vocab, f) = table.dim();
    let (kf, gu) = kernel.dim();
    if kf != f || gu == 0 || in_bias.len() != gu {
        return Err(shape_err(
            OP,
            format!(
                "kernel {:?} and a bias of {} do not fit an embedding table {:?}",
                kernel.shape(),
                in_bias.len(),
                table.shape()
            ),
        ));
    }
    let mut out = vec![0.0; checked_product(OP, &[vocab, gu])?];
    project(
        flat(OP, "table", &table)?,
        (vocab, f),
        &kernel,
        in_bias,
        &mut out,
    )?;
    ndarray::Array2::from_shape_vec((vocab, gu), out).map_err(|e| shape_err(OP, e.to_string()))
}

/// Checks a token layer's sizes: ids `[N, T]`, projection `[V, G·U]`, recurrent `[U, G·U]`,
/// the cell's bias. `f` of the result is 0: there are no features.
fn validate_tokens(
    cell: RnnCell,
    (n, t): (usize, usize),
    p: &RnnTokenParams<'_>,
) -> KernelResult<RnnDims> {
    let g = cell.gates();
    let (u, gu) = p.recurrent.dim();
    if gu != g * u || p.projection.dim().1 != gu || p.projection.dim().0 == 0 {
        return Err(shape_err(
            OP,
            format!(
                "projection {:?} and recurrent kernel {:?} do not fit {g} gates",
                p.projection.shape(),
                p.recurrent.shape()
            ),
        ));
    }
    expect_shape(OP, "bias", p.bias.shape(), &cell.bias_shape(u))?;
    if n == 0 || t == 0 || u == 0 {
        return Err(param_err(OP, "batch, timesteps and units must be positive"));
    }
    Ok(RnnDims { n, t, f: 0, u })
}

/// Each id's row in a table of `vocab` rows, into `rows` (positions in `ids`' logical order);
/// an id outside `0..vocab` is [`KernelError::IdOutOfRange`](super::KernelError::IdOutOfRange).
fn token_rows<I: EmbeddingId>(
    ids: &ArrayView2<'_, I>,
    vocab: usize,
    rows: &mut Vec<usize>,
) -> KernelResult<()> {
    rows.clear();
    for (position, &id) in ids.iter().enumerate() {
        rows.push(row_index(id, position, vocab)?);
    }
    Ok(())
}

/// Inference of a recurrent layer over token ids `[N, T]` (i32 or i64) whose embedding was
/// folded into its input projection: like [`rnn_infer`] on `embedding(ids)`, with the step's
/// `x_t·W + b_in` read as row `ids[n, t]` of `p.projection` instead of computed. An LSTM runs
/// `infer.rs`'s loop, each step's GEMM `h·U` only, for every batch size (so the bits of a
/// sample do not depend on how the batch is split between threads); other cells and a padding
/// mask run [`rnn_forward`]'s recurrence over the gathered rows. An id outside the table is
/// [`KernelError::IdOutOfRange`](super::KernelError::IdOutOfRange), as in the embedding kernel.
/// `keep` is a padding mask (`[N·T]`, see [`RnnRun`]; it takes the general recurrence).
/// Keeps nothing for a backward pass.
pub fn rnn_infer_tokens<I: EmbeddingId>(
    cell: RnnCell,
    ids: ArrayView2<'_, I>,
    p: &RnnTokenParams<'_>,
    (return_sequences, keep): (bool, Option<&[bool]>),
    cache: &mut RnnCache,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let d = validate_tokens(cell, ids.dim(), p)?;
    expect_shape(OP, "out", out.shape(), &output_shape(&d, return_sequences))?;
    token_rows(&ids, p.projection.dim().0, &mut cache.token_rows)?;
    if cell == RnnCell::Lstm && keep.is_none() {
        return infer::lstm_infer_tokens(&d, p, return_sequences, cache, out);
    }
    cache.prepare(cell, d, return_sequences)?;
    // Only the inference entry points fill `xw` from tokens: backward cannot use this cache.
    cache.config = None;
    let gu = d.gu(cell);
    let (_, rec_bias) = split_bias(cell, flat(OP, "bias", &p.bias)?, gu)?;
    let projection = flat(OP, "projection", &p.projection)?;
    let xw = cache
        .xw
        .get_mut(..checked_product(OP, &[d.n, d.t, gu])?)
        .ok_or_else(|| shape_err(OP, "projection buffer too small"))?;
    for (dst, &r) in xw.chunks_exact_mut(gu).zip(&cache.token_rows) {
        let row = projection
            .get(r * gu..(r + 1) * gu)
            .ok_or_else(|| shape_err(OP, "token row outside the projection"))?;
        dst.copy_from_slice(row);
    }
    let run = RnnRun {
        keep,
        ..RnnRun::default()
    };
    cache.set_run(cell, &d, &run)?;
    train::recur(
        cell,
        &d,
        &p.recurrent,
        rec_bias,
        return_sequences,
        cache,
        out,
    )
}
