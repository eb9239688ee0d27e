//! The training driver: [`rnn_forward`] (keeping in the [`RnnCache`] what backward needs) and
//! [`rnn_backward`] (backpropagation through time), for every cell, with Keras's
//! `go_backwards` and dropout masks ([`RnnRun`], `masks.rs`).
//!
//! `go_backwards` reverses each sequence's steps into the cache before the projection, so the
//! recurrence and its outputs are in processing order (Keras returns the sequence reversed);
//! backward reverses the input gradient back.

use ndarray::{s, ArrayView2, ArrayView3, ArrayViewD, ArrayViewMut2, ArrayViewMutD};

use super::masks::{
    input_grads, project_masked, recurrent_grad, recurrent_kernel_grad, recurrent_product,
    reverse_steps, transpose_driver_blocks,
};
use super::{
    gru, gru_before, lstm, output_shape, simple, split_bias, validate, RnnCache, RnnCell, RnnDims,
    RnnGrads, RnnParams, RnnRun, OP,
};
use crate::runtime::kernels::error::{param_err, shape_err, KernelResult};
use crate::runtime::kernels::linalg::{column_sums, ensure_len, flat, flat_mut, mat};
use crate::runtime::kernels::panels::Panels;

/// Forward pass of a recurrent layer; fills `cache` for [`rnn_backward`].
pub fn rnn_forward(
    cell: RnnCell,
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    return_sequences: bool,
    cache: &mut RnnCache,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let run = RnnRun::default();
    rnn_forward_run(cell, x, p, &run, return_sequences, cache, out)
}

/// [`rnn_forward`] with Keras's `go_backwards` and a training step's dropout masks.
pub fn rnn_forward_run(
    cell: RnnCell,
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    run: &RnnRun<'_>,
    return_sequences: bool,
    cache: &mut RnnCache,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let d = validate(cell, &x, p)?;
    expect_out(&d, return_sequences, &out)?;
    cache.prepare(cell, d, return_sequences)?;
    cache.set_run(cell, &d, run)?;
    let gu = d.gu(cell);
    let (in_bias, rec_bias) = split_bias(cell, flat(OP, "bias", &p.bias)?, gu)?;
    let mut x_rev = std::mem::take(&mut cache.x_rev);
    let xs = processing_order(flat(OP, "x", &x)?, &d, run.go_backwards, &mut x_rev);
    let projected = project_masked(cache, xs, &d, &p.kernel, gu);
    cache.x_rev = x_rev;
    projected?;
    add_bias(&mut cache.xw, d.n * d.t, in_bias);
    recur(
        cell,
        &d,
        &p.recurrent,
        rec_bias,
        return_sequences,
        cache,
        out,
    )
}

fn expect_out(
    d: &RnnDims,
    return_sequences: bool,
    out: &ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    crate::runtime::kernels::error::expect_shape(
        OP,
        "out",
        out.shape(),
        &output_shape(d, return_sequences),
    )
}

/// `x` in processing order: itself, or its steps reversed into `buf` for `go_backwards`.
fn processing_order<'a>(
    x: &'a [f32],
    d: &RnnDims,
    go_backwards: bool,
    buf: &'a mut Vec<f32>,
) -> &'a [f32] {
    if !go_backwards {
        return x;
    }
    buf.clear();
    buf.extend_from_slice(x);
    reverse_steps(buf, (d.n, d.t, d.f));
    buf
}

/// Adds the input bias to each of the `rows` rows of `xw`.
fn add_bias(xw: &mut [f32], rows: usize, in_bias: &[f32]) {
    let gu = in_bias.len().max(1);
    for row in xw.chunks_exact_mut(gu).take(rows) {
        row.iter_mut().zip(in_bias).for_each(|(v, &b)| *v += b);
    }
}

/// The recurrence of [`rnn_forward`] and `rnn_infer_tokens` over the input projection
/// already in `cache.xw` (`[N·T, G·U]`, input bias included): per step the product of
/// `h_{t−1}` (masked per gate in training with recurrent dropout) by `U`, the cell's
/// element-wise update, and the new state into the next step and `out`.
pub(super) fn recur(
    cell: RnnCell,
    d: &RnnDims,
    recurrent: &ArrayView2<'_, f32>,
    rec_bias: &[f32],
    return_sequences: bool,
    cache: &mut RnnCache,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let width = cell.driver_blocks() * d.u;
    if recurrent.dim() != (d.u, cell.gates() * d.u) {
        return Err(shape_err(OP, "recurrent kernel does not fit the state"));
    }
    // The driver's blocks of `U` in panels, for the product at every step.
    let mut buf = std::mem::take(&mut cache.panels);
    let panels = Panels::pack(&recurrent.slice(s![.., ..width]), &mut buf);
    let result = recur_steps(
        cell,
        d,
        (recurrent, &panels),
        rec_bias,
        return_sequences,
        cache,
        out,
    );
    cache.panels = buf;
    result
}

/// The steps of [`recur`], with the driver's panels.
fn recur_steps(
    cell: RnnCell,
    d: &RnnDims,
    (recurrent, panels): (&ArrayView2<'_, f32>, &Panels<'_>),
    rec_bias: &[f32],
    return_sequences: bool,
    cache: &mut RnnCache,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let d = *d;
    let outs = flat_mut(OP, "out", &mut out)?;
    for n in 0..d.n {
        cache.h_prev[n * d.t * d.u..n * d.t * d.u + d.u].fill(0.0);
        if cell == RnnCell::Lstm {
            cache.c_prev[n * d.t * d.u..n * d.t * d.u + d.u].fill(0.0);
        }
    }
    for t in 0..d.t {
        recurrent_product(cache, cell, &d, t, (recurrent, panels))?;
        match cell {
            RnnCell::SimpleRnn => simple::forward_step(cache, &d, t),
            RnnCell::Lstm => lstm::forward_step(cache, &d, t),
            RnnCell::Gru => gru::forward_step(cache, &d, t, rec_bias),
            RnnCell::GruResetBefore => gru_before::forward_step(cache, &d, t, recurrent)?,
        }
        cache.carry_masked(cell, &d, t);
        for n in 0..d.n {
            let h = &cache.h_new[n * d.u..(n + 1) * d.u];
            if t + 1 < d.t {
                let at = (n * d.t + t + 1) * d.u;
                cache.h_prev[at..at + d.u].copy_from_slice(h);
            }
            if return_sequences && cache.zero_output(&d, n, t) {
                let at = (n * d.t + t) * d.u;
                outs[at..at + d.u].fill(0.0);
            } else if return_sequences {
                let at = (n * d.t + t) * d.u;
                outs[at..at + d.u].copy_from_slice(h);
            } else if t + 1 == d.t {
                outs[n * d.u..(n + 1) * d.u].copy_from_slice(h);
            }
        }
    }
    Ok(())
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
    let expect = crate::runtime::kernels::error::expect_shape;
    expect(OP, "dx", dx.shape(), x.shape())?;
    expect(OP, "dkernel", dkernel.shape(), p.kernel.shape())?;
    expect(OP, "dbias", dbias.shape(), p.bias.shape())?;
    let gu = d.gu(cell);
    let db = flat_mut(OP, "dbias", &mut dbias)?;
    let (db_in, db_rec) = db.split_at_mut(gu.min(db.len()));
    backward_recurrent(cell, &d, p, cache, dy, (&mut drecurrent, db_rec))?;
    let rows = d.n * d.t;
    let go_backwards = cache.go_backwards;
    let x_rev = std::mem::take(&mut cache.x_rev);
    let xs = if go_backwards {
        &x_rev[..]
    } else {
        flat(OP, "x", &x)?
    };
    let dxs = flat_mut(OP, "dx", &mut dx)?;
    let done = input_grads(cache, xs, &d, &p.kernel, gu, dxs, &mut dkernel);
    cache.x_rev = x_rev;
    done?;
    if go_backwards {
        reverse_steps(dxs, (d.n, d.t, d.f));
    }
    column_sums(&cache.dz_in[..rows * gu], gu, db_in);
    Ok(())
}

/// The part of [`rnn_backward`] that does not read the input: through time (the
/// pre-activation gradients into the cache's `dz_in`, and `dz_rec` for a reset-after GRU),
/// `dU` into `drecurrent` and a reset-after GRU's recurrent bias gradient into `db_rec`
/// (empty for the other cells). The input side (`dW`, `dx`, the input bias) is the caller's,
/// from `dz_in`: [`rnn_backward`] multiplies by the input, a folded embedding
/// (`tokens_train.rs`) sums per token first.
pub(super) fn backward_recurrent(
    cell: RnnCell,
    d: &RnnDims,
    p: &RnnParams<'_>,
    cache: &mut RnnCache,
    dy: ArrayViewD<'_, f32>,
    (drecurrent, db_rec): (&mut ArrayViewMut2<'_, f32>, &mut [f32]),
) -> KernelResult<()> {
    let d = *d;
    let Some((cached_cell, cached_dims, return_sequences)) = cache.config else {
        return Err(param_err(OP, "backward called before forward"));
    };
    if cached_cell != cell || cached_dims != d {
        return Err(param_err(OP, "cache was filled by a different layer call"));
    }
    let expect = crate::runtime::kernels::error::expect_shape;
    expect(OP, "dy", dy.shape(), &output_shape(&d, return_sequences))?;
    expect(OP, "drecurrent", drecurrent.shape(), p.recurrent.shape())?;
    let dys = flat(OP, "dy", &dy)?;
    // Uᵀ once per call, kept in the cache's buffer like `x_rev`, and in panels.
    let mut recurrent_t = std::mem::take(&mut cache.recurrent_t);
    let mut buf = std::mem::take(&mut cache.panels);
    let done = transpose_driver_blocks(cell, &d, &p.recurrent, &mut recurrent_t).and_then(|()| {
        let width = cell.driver_blocks() * d.u;
        let panels = Panels::pack(&mat(OP, &recurrent_t, width, d.u)?, &mut buf);
        let transposed = (&recurrent_t[..], &panels);
        through_time(cell, &d, p, cache, dys, return_sequences, transposed)
    });
    cache.recurrent_t = recurrent_t;
    cache.panels = buf;
    done?;
    recurrent_kernel_grad(cache, cell, &d, drecurrent)?;
    if cell == RnnCell::GruResetBefore {
        gru_before::candidate_kernel_grad(cache, &d, drecurrent)?;
    }
    if cell == RnnCell::Gru {
        let (rows, gu) = (d.n * d.t, d.gu(cell));
        column_sums(&cache.dz_rec[..rows * gu], gu, db_rec);
    }
    Ok(())
}

/// The steps in reverse: each adds its output's gradient to `dh`, runs the cell's backward
/// (pre-activation gradients into `dz_in`/`dz_rec`) and carries `dh_{t−1}` through `U`
/// (`recurrent_t`: its driver blocks transposed, from `transpose_driver_blocks`, and the
/// same in panels).
fn through_time(
    cell: RnnCell,
    d: &RnnDims,
    p: &RnnParams<'_>,
    cache: &mut RnnCache,
    dys: &[f32],
    return_sequences: bool,
    recurrent_t: (&[f32], &Panels<'_>),
) -> KernelResult<()> {
    let d = *d;
    let gu = d.gu(cell);
    let rows = d.n * d.t;
    ensure_len(&mut cache.dz_in, rows * gu);
    if cell.separate_recurrent_grads() {
        ensure_len(&mut cache.dz_rec, rows * gu);
    }
    ensure_len(&mut cache.dh, d.n * d.u);
    ensure_len(&mut cache.dc, d.n * d.u);
    cache.dh[..d.n * d.u].fill(0.0);
    cache.dc[..d.n * d.u].fill(0.0);
    if dys.len() < d.n * d.u {
        return Err(shape_err(OP, "dy too short"));
    }
    for t in (0..d.t).rev() {
        for n in 0..d.n {
            let g = if return_sequences && cache.zero_output(&d, n, t) {
                None
            } else if return_sequences {
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
        cache.save_masked_grads(&d, t);
        match cell {
            RnnCell::SimpleRnn => simple::backward_step(cache, &d, t),
            RnnCell::Lstm => lstm::backward_step(cache, &d, t),
            RnnCell::Gru => gru::backward_step(cache, &d, t),
            RnnCell::GruResetBefore => gru_before::backward_step(cache, &d, t, &p.recurrent)?,
        }
        recurrent_grad(cache, cell, &d, t, recurrent_t)?;
        cache.restore_masked_grads(cell, &d, t);
    }
    Ok(())
}

impl RnnCache {
    /// Keeps `run`'s options and masks for backward (checked against the call's sizes).
    pub(super) fn set_run(
        &mut self,
        cell: RnnCell,
        d: &RnnDims,
        run: &RnnRun<'_>,
    ) -> KernelResult<()> {
        self.go_backwards = run.go_backwards;
        self.set_keep(d, run)?;
        self.input_mask.clear();
        self.input_masks = 0;
        self.recurrent_mask.clear();
        if let Some(mask) = run.input_mask {
            let per = d.n * d.f;
            let c = mask.len().checked_div(per).unwrap_or(0);
            if (c != 1 && c != cell.gates()) || c * per != mask.len() {
                return Err(shape_err(
                    OP,
                    format!("an input mask of {} values", mask.len()),
                ));
            }
            self.input_mask.extend_from_slice(mask);
            self.input_masks = c;
        }
        if let Some(mask) = run.recurrent_mask {
            if mask.len() != d.n * d.gu(cell) {
                return Err(shape_err(
                    OP,
                    format!("a state mask of {} values", mask.len()),
                ));
            }
            self.recurrent_mask.extend_from_slice(mask);
        }
        Ok(())
    }
}
