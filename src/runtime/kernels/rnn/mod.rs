//! Recurrent layers (SimpleRNN, LSTM, GRU) with Keras semantics, forward and BPTT backward.
//!
//! Input `x: [N, T, F]`; kernel `[F, G·U]`, recurrent kernel `[U, G·U]`; bias `[U]` (simple),
//! `[4U]` (LSTM, gates i, f, c, o) or `[2, 3U]` (GRU `reset_after=True`, gates z, r, h; row 0
//! input bias, row 1 recurrent bias). Initial states are zero. Output `[N, T, U]` with
//! `return_sequences`, else `[N, U]` (the last step).
//!
//! The driver here is shared: one GEMM projects every timestep at once (`X·W + b` into
//! `[N·T, G·U]`), then per step one GEMM `h_{t−1}·U` over the whole batch and the cell's
//! element-wise update (`simple.rs`, `lstm.rs`, `gru.rs`). The forward keeps in an
//! [`RnnCache`] exactly what backward needs. Backward runs the steps in reverse, each step
//! producing pre-activation gradients and one GEMM `dh_{t−1} += dz_t·Uᵀ`; the weight gradients
//! then come from three GEMMs over all timesteps: `dW = Xᵀ·dZ`, `dU = H_prevᵀ·dZ_rec`,
//! `dX = dZ·Wᵀ`. The cache is reused between calls, so a steady state allocates nothing.
//!
//! Two other entry points: [`rnn_infer`] (the interpreter) runs an LSTM over a batch without
//! keeping anything for backward (`infer.rs`); [`rnn_forward_sliced`] and
//! [`rnn_backward_sliced`] (the trainer) run the driver above on one batch slice per thread
//! (`sliced.rs`).

mod gru;
mod infer;
mod lstm;
mod simple;
mod sliced;

pub use sliced::{rnn_backward_sliced, rnn_forward_sliced, SlicedRnn};

use ndarray::{ArrayView2, ArrayView3, ArrayViewD, ArrayViewMut2, ArrayViewMut3, ArrayViewMutD};

use super::error::{checked_product, expect_shape, param_err, shape_err, KernelResult};
use super::linalg::{column_sums, ensure_len, flat, flat_mut, gemm, gemm_rows, mat, mat_mut};

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
}

impl RnnCell {
    /// Gate blocks per unit (`G`).
    pub fn gates(self) -> usize {
        match self {
            Self::SimpleRnn => 1,
            Self::Lstm => 4,
            Self::Gru => 3,
        }
    }

    /// The bias shape for `units`.
    pub fn bias_shape(self, units: usize) -> Vec<usize> {
        match self {
            Self::SimpleRnn => vec![units],
            Self::Lstm => vec![4 * units],
            Self::Gru => vec![2, 3 * units],
        }
    }
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
    /// Per-step scratch: `h_{t−1}·U` `[N, G·U]`, new state `[N, U]`.
    zrec: Vec<f32>,
    h_new: Vec<f32>,
    /// Backward: pre-activation gradients (input side, recurrent side), `[N·T, G·U]`.
    dz_in: Vec<f32>,
    dz_rec: Vec<f32>,
    /// Backward carries `dh`, `dc`, `[N, U]`.
    dh: Vec<f32>,
    dc: Vec<f32>,
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

/// Rows `(n, t)` for all `n` of a `[N·T, width]` buffer, as an `[N, width]` strided view.
/// `buf` from timestep `t`'s row of the first sequence: with row stride `T·width`, the rows
/// of timestep `t` of every sequence.
fn step_slice(buf: &[f32], t: usize, width: usize) -> KernelResult<&[f32]> {
    buf.get(t * width..)
        .ok_or_else(|| shape_err(OP, "step outside buffer"))
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

/// Forward pass of a recurrent layer; fills `cache` for [`rnn_backward`].
pub fn rnn_forward(
    cell: RnnCell,
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    return_sequences: bool,
    cache: &mut RnnCache,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let d = validate(cell, &x, p)?;
    expect_shape(OP, "out", out.shape(), &output_shape(&d, return_sequences))?;
    cache.prepare(cell, d, return_sequences)?;
    let gu = d.gu(cell);
    let bias = flat(OP, "bias", &p.bias)?;
    let (in_bias, rec_bias) = bias.split_at(if cell == RnnCell::Gru { gu } else { bias.len() });
    let recurrent = p.recurrent;
    {
        let xm = mat(OP, flat(OP, "x", &x)?, d.n * d.t, d.f)?;
        let mut xw = mat_mut(OP, &mut cache.xw, d.n * d.t, gu)?;
        gemm(OP, 1.0, &xm, &p.kernel, 0.0, &mut xw)?;
    }
    for row in cache.xw[..d.n * d.t * gu].chunks_exact_mut(gu) {
        row.iter_mut().zip(in_bias).for_each(|(v, &b)| *v += b);
    }
    let outs = flat_mut(OP, "out", &mut out)?;
    for n in 0..d.n {
        cache.h_prev[n * d.t * d.u..n * d.t * d.u + d.u].fill(0.0);
        if cell == RnnCell::Lstm {
            cache.c_prev[n * d.t * d.u..n * d.t * d.u + d.u].fill(0.0);
        }
    }
    for t in 0..d.t {
        {
            let hp = step_slice(&cache.h_prev, t, d.u)?;
            let mut zrec = mat_mut(OP, &mut cache.zrec, d.n, gu)?;
            gemm_rows(OP, hp, (d.n, d.u, d.t * d.u), &recurrent, 0.0, &mut zrec)?;
        }
        match cell {
            RnnCell::SimpleRnn => simple::forward_step(cache, &d, t),
            RnnCell::Lstm => lstm::forward_step(cache, &d, t),
            RnnCell::Gru => gru::forward_step(cache, &d, t, rec_bias),
        }
        for n in 0..d.n {
            let h = &cache.h_new[n * d.u..(n + 1) * d.u];
            if t + 1 < d.t {
                let at = (n * d.t + t + 1) * d.u;
                cache.h_prev[at..at + d.u].copy_from_slice(h);
            }
            if return_sequences {
                let at = (n * d.t + t) * d.u;
                outs[at..at + d.u].copy_from_slice(h);
            } else if t + 1 == d.t {
                outs[n * d.u..(n + 1) * d.u].copy_from_slice(h);
            }
        }
    }
    Ok(())
}

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
    // A few sequences: one matrix-vector product per step either way, and projecting every
    // timestep's input at once (`rnn_forward`) is the better GEMM.
    const FEW: usize = 4;
    match cell {
        RnnCell::Lstm if x.dim().0 >= FEW => infer::lstm_infer(x, p, return_sequences, cache, out),
        _ => rnn_forward(cell, x, p, return_sequences, cache, out),
    }
}

/// Backpropagation through time for the call that last filled `cache`.
pub fn rnn_backward(
    cell: RnnCell,
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    cache: &mut RnnCache,
    dy: ArrayViewD<'_, f32>,
    grads: RnnGrads<'_>,
) -> KernelResult<()> {
    let RnnGrads {
        mut dx,
        mut dkernel,
        mut drecurrent,
        mut dbias,
    } = grads;
    let d = validate(cell, &x, p)?;
    let Some((cached_cell, cached_dims, return_sequences)) = cache.config else {
        return Err(param_err(OP, "backward called before forward"));
    };
    if cached_cell != cell || cached_dims != d {
        return Err(param_err(OP, "cache was filled by a different layer call"));
    }
    expect_shape(OP, "dy", dy.shape(), &output_shape(&d, return_sequences))?;
    expect_shape(OP, "dx", dx.shape(), x.shape())?;
    expect_shape(OP, "dkernel", dkernel.shape(), p.kernel.shape())?;
    expect_shape(OP, "drecurrent", drecurrent.shape(), p.recurrent.shape())?;
    expect_shape(OP, "dbias", dbias.shape(), p.bias.shape())?;
    let gu = d.gu(cell);
    let rows = d.n * d.t;
    ensure_len(&mut cache.dz_in, rows * gu);
    if cell == RnnCell::Gru {
        ensure_len(&mut cache.dz_rec, rows * gu);
    }
    ensure_len(&mut cache.dh, d.n * d.u);
    ensure_len(&mut cache.dc, d.n * d.u);
    cache.dh[..d.n * d.u].fill(0.0);
    cache.dc[..d.n * d.u].fill(0.0);
    let dys = flat(OP, "dy", &dy)?;
    for t in (0..d.t).rev() {
        for n in 0..d.n {
            let g = if return_sequences {
                Some(&dys[(n * d.t + t) * d.u..(n * d.t + t + 1) * d.u])
            } else if t + 1 == d.t {
                Some(&dys[n * d.u..(n + 1) * d.u])
            } else {
                None
            };
            if let Some(g) = g {
                cache.dh[n * d.u..(n + 1) * d.u]
                    .iter_mut()
                    .zip(g)
                    .for_each(|(a, &b)| *a += b);
            }
        }
        match cell {
            RnnCell::SimpleRnn => simple::backward_step(cache, &d, t),
            RnnCell::Lstm => lstm::backward_step(cache, &d, t),
            RnnCell::Gru => gru::backward_step(cache, &d, t),
        }
        let dz_rec = if cell == RnnCell::Gru {
            &cache.dz_rec
        } else {
            &cache.dz_in
        };
        let dzt = step_slice(dz_rec, t, gu)?;
        let mut dh = mat_mut(OP, &mut cache.dh, d.n, d.u)?;
        gemm_rows(OP, dzt, (d.n, gu, d.t * gu), &p.recurrent.t(), 1.0, &mut dh)?;
    }
    let dz_in = mat(OP, &cache.dz_in, rows, gu)?;
    let dz_rec = if cell == RnnCell::Gru {
        mat(OP, &cache.dz_rec, rows, gu)?
    } else {
        dz_in
    };
    let xm = mat(OP, flat(OP, "x", &x)?, rows, d.f)?;
    let hp = mat(OP, &cache.h_prev, rows, d.u)?;
    let mut dxm = mat_mut(OP, flat_mut(OP, "dx", &mut dx)?, rows, d.f)?;
    gemm(OP, 1.0, &dz_in, &p.kernel.t(), 0.0, &mut dxm)?;
    gemm(OP, 1.0, &xm.t(), &dz_in, 0.0, &mut dkernel)?;
    gemm(OP, 1.0, &hp.t(), &dz_rec, 0.0, &mut drecurrent)?;
    let db = flat_mut(OP, "dbias", &mut dbias)?;
    let (db_in, db_rec) = db.split_at_mut(gu);
    column_sums(&cache.dz_in[..rows * gu], gu, db_in);
    if cell == RnnCell::Gru {
        column_sums(&cache.dz_rec[..rows * gu], gu, db_rec);
    }
    Ok(())
}
