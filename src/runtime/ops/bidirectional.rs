//! `Op::Bidirectional` (part of the recurrent family): the wrapped recurrent layer run forwards
//! and backwards over the same input with its two sets of weights, through the recurrent
//! layer's own sliced paths ([`super::recurrent`]), and the two outputs merged.
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`]. Output: the merged value,
//! or the gradients of both directions' weights and their summed input gradient. Invariants:
//! the backward direction's outputs are put back in time order before the merge (with
//! `return_sequences`), as Keras does; in training the forward direction draws its dropout
//! masks from the step's stream first, then the backward direction, so runs repeat bit for bit.

use ndarray::{ArrayD, Ix2, Ix3, IxDyn};

use super::recurrent::{kernel_cell, rnn_sliced, RnnInput, RnnLayer};
use crate::ir::Op;
use crate::ops::bidirectional::{BiMerge, RnnWeights};
use crate::runtime::interp::exec::{plan_err, InferStep, StepState};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::rnn::{
    self, rnn_backward_sliced, rnn_forward_sliced, RnnGrads, SlicedRnn, SlicedRun,
};
use crate::runtime::train::backward::{input_target, BackwardStep};
use crate::runtime::train::context::{Ctx as TrainCtx, StepState as TrainState};
use crate::runtime::train::forward::{param, ForwardStep, Semantics};
use crate::runtime::train::{ParamStore, TrainError};

/// The interpreter's scratch: each direction's caches (one per batch slice) and output.
#[derive(Debug, Default)]
pub(crate) struct BiInferState {
    caches: [Vec<rnn::RnnCache>; 2],
    outs: [Vec<f32>; 2],
}

/// The trainer's state: each direction's sliced workspaces, output and output gradient, and
/// the backward direction's input gradient.
#[derive(Debug, Default)]
pub(crate) struct BiTrainState {
    rnns: [SlicedRnn; 2],
    outs: [ArrayD<f32>; 2],
    dys: [ArrayD<f32>; 2],
    dx_backward: ArrayD<f32>,
}

/// The attributes of an `Op::Bidirectional`.
struct Bi<'o> {
    cell: rnn::RnnCell,
    units: usize,
    return_sequences: bool,
    go_backwards: bool,
    options: &'o crate::ops::recurrent::RnnOptions,
    merge: BiMerge,
    weights: [&'o RnnWeights; 2],
}

impl<'o> Bi<'o> {
    fn of(op: &'o Op) -> Option<Self> {
        let Op::Bidirectional {
            cell,
            units,
            return_sequences,
            options,
            merge,
            forward,
            backward,
        } = op
        else {
            return None;
        };
        Some(Self {
            cell: kernel_cell(*cell, options),
            units: *units,
            return_sequences: *return_sequences,
            go_backwards: options.go_backwards,
            options,
            merge: *merge,
            weights: [forward, backward],
        })
    }

    /// Whether direction `d` (0 forward, 1 backward) reads the sequence from its end.
    fn backwards(&self, d: usize) -> bool {
        self.go_backwards != (d == 1)
    }

    /// One direction's output shape: the merged one with `units` on the last axis.
    fn direction_shape(&self, merged: &[usize]) -> Vec<usize> {
        let mut shape = merged.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = self.units;
        }
        shape
    }
}

/// `(N, T, U)` of a direction's output shape (`T` = 1 without `return_sequences`).
fn dims(shape: &[usize]) -> (usize, usize, usize) {
    match shape {
        [n, t, u] => (*n, *t, *u),
        [n, u] => (*n, 1, *u),
        _ => (0, 0, 0),
    }
}

/// The merged output from the two directions' outputs `f` and `b` (`[N, T, U]` each, `b` in
/// its processing order, put back in time order here).
fn merge_outputs(
    merge: BiMerge,
    (n, t, u): (usize, usize, usize),
    f: &[f32],
    b: &[f32],
    dst: &mut [f32],
) {
    let width = if merge == BiMerge::Concat { 2 * u } else { u };
    for s in 0..n {
        for step in 0..t {
            let fr = &f[(s * t + step) * u..(s * t + step + 1) * u];
            let back = s * t + (t - 1 - step);
            let br = &b[back * u..(back + 1) * u];
            let out = &mut dst[(s * t + step) * width..(s * t + step + 1) * width];
            match merge {
                BiMerge::Concat => {
                    out[..u].copy_from_slice(fr);
                    out[u..].copy_from_slice(br);
                }
                BiMerge::Sum => out
                    .iter_mut()
                    .zip(fr.iter().zip(br))
                    .for_each(|(o, (a, b))| *o = a + b),
                BiMerge::Mul => out
                    .iter_mut()
                    .zip(fr.iter().zip(br))
                    .for_each(|(o, (a, b))| *o = a * b),
                BiMerge::Ave => out
                    .iter_mut()
                    .zip(fr.iter().zip(br))
                    .for_each(|(o, (a, b))| *o = (a + b) * 0.5),
            }
        }
    }
}

/// The two directions' output gradients `df`, `db` (`b`'s in its processing order) from the
/// merged output's `dy`, given the directions' outputs `f`, `b` (for `mul`).
fn split_gradient(
    merge: BiMerge,
    (n, t, u): (usize, usize, usize),
    (f, b): (&[f32], &[f32]),
    dy: &[f32],
    (df, db): (&mut [f32], &mut [f32]),
) {
    let width = if merge == BiMerge::Concat { 2 * u } else { u };
    for s in 0..n {
        for step in 0..t {
            let at = (s * t + step) * u;
            let back = (s * t + (t - 1 - step)) * u;
            let g = &dy[(s * t + step) * width..(s * t + step + 1) * width];
            for k in 0..u {
                let (gf, gb) = match merge {
                    BiMerge::Concat => (g[k], g[u + k]),
                    BiMerge::Sum => (g[k], g[k]),
                    BiMerge::Mul => (g[k] * b[back + k], g[k] * f[at + k]),
                    BiMerge::Ave => (g[k] * 0.5, g[k] * 0.5),
                };
                df[at + k] = gf;
                db[back + k] = gb;
            }
        }
    }
}

/// A zeroed array of `shape`, reusing `a` when it already has that shape.
fn sized(a: &mut ArrayD<f32>, shape: &[usize]) {
    if a.shape() != shape {
        *a = ArrayD::zeros(IxDyn(shape));
    }
}

/// Inference: each direction through the recurrent layer's sliced path, then the merge.
pub(crate) fn infer(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        dst,
        state,
        ..
    } = s;
    let step = ctx.step;
    let bi = Bi::of(&step.op).ok_or_else(|| plan_err(step, "not a bidirectional step"))?;
    let StepState::Bidirectional(st) = state else {
        return Err(plan_err(step, "bidirectional step without its state"));
    };
    let x = ctx.input(0)?;
    let shape = bi.direction_shape(ctx.shape(step.output)?);
    let len: usize = shape.iter().product();
    let keep = super::padding::infer_keep(ctx, memory)?;
    let BiInferState { caches, outs } = &mut **st;
    for (d, (caches, out)) in caches.iter_mut().zip(outs.iter_mut()).enumerate() {
        let w = bi.weights[d];
        let input = RnnInput::Features {
            xs: ctx.read(&memory.buffers, x)?,
            params: rnn::RnnParams {
                kernel: ctx.matrix(w.kernel)?,
                recurrent: ctx.matrix(w.recurrent)?,
                bias: ctx.param(w.bias)?.view(),
            },
        };
        let layer = RnnLayer {
            cell: bi.cell,
            return_sequences: bi.return_sequences,
            go_backwards: bi.backwards(d),
            in_shape: ctx.shape(x)?,
            out_shape: &shape,
            keep: keep.as_deref(),
            // Keras's Bidirectional sets `zero_output_for_mask` with `return_sequences`.
            zero_masked: bi.return_sequences,
        };
        out.resize(len, 0.0);
        rnn_sliced(ctx, &layer, &input, caches, out)?;
    }
    if dst.len() < len * if bi.merge == BiMerge::Concat { 2 } else { 1 } {
        return Err(plan_err(step, "bidirectional output too small"));
    }
    merge_outputs(bi.merge, dims(&shape), &outs[0], &outs[1], dst);
    Ok(())
}

/// One direction's weights as the kernels read them.
fn weights<'p>(
    ctx: &TrainCtx<'_>,
    params: &'p ParamStore,
    w: &RnnWeights,
) -> Result<rnn::RnnParams<'p>, TrainError> {
    Ok(rnn::RnnParams {
        kernel: ctx.rank::<f32, Ix2>(param(ctx, params, w.kernel)?)?,
        recurrent: ctx.rank::<f32, Ix2>(param(ctx, params, w.recurrent)?)?,
        bias: param(ctx, params, w.bias)?,
    })
}

/// Training forward: both directions (forward first, each drawing its dropout masks), merged.
pub(crate) fn forward(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        params,
        state,
        semantics,
        out,
    } = f;
    let bi = Bi::of(&step.op).ok_or_else(|| ctx.internal("not a bidirectional step"))?;
    let TrainState::Bidirectional(st) = state else {
        return Err(ctx.internal("missing bidirectional state"));
    };
    let xv = ctx.rank::<f32, Ix3>(env.f32(ctx.arg(step, 0)?)?)?;
    let shape = bi.direction_shape(out.shape());
    let keep = super::padding::train_keep(step, ctx, env)?;
    let mut rng = match semantics {
        Semantics::Train(rng) => Some(rng),
        Semantics::Infer => None,
    };
    for d in 0..2 {
        let rp = weights(ctx, params, bi.weights[d])?;
        sized(&mut st.outs[d], &shape);
        let run = SlicedRun {
            go_backwards: bi.backwards(d),
            dropout: bi.options.dropout,
            recurrent_dropout: bi.options.recurrent_dropout,
            rng: rng.as_deref_mut(),
            keep: keep.as_deref(),
            zero_masked_outputs: bi.return_sequences,
        };
        rnn_forward_sliced(
            bi.cell,
            xv,
            &rp,
            run,
            bi.return_sequences,
            &mut st.rnns[d],
            st.outs[d].view_mut(),
        )
        .map_err(|e| ctx.kernel(e))?;
    }
    let (Some(fo), Some(bo)) = (st.outs[0].as_slice(), st.outs[1].as_slice()) else {
        return Err(ctx.internal("bidirectional outputs are not contiguous"));
    };
    let dst = out
        .as_slice_mut()
        .ok_or_else(|| ctx.internal("bidirectional output is not contiguous"))?;
    merge_outputs(bi.merge, dims(&shape), fo, bo, dst);
    Ok(())
}

/// Backward: the merged gradient split between the directions, each direction's backward
/// through time, the input gradients summed.
pub(crate) fn backward(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        params,
        state,
        dy,
        grads,
        ..
    } = b;
    let bi = Bi::of(&step.op).ok_or_else(|| ctx.internal("not a bidirectional step"))?;
    let TrainState::Bidirectional(st) = state else {
        return Err(ctx.internal("missing bidirectional state"));
    };
    let v = ctx.arg(step, 0)?;
    let xv = ctx.rank::<f32, Ix3>(env.f32(v)?)?;
    let shape = bi.direction_shape(dy.shape());
    let BiTrainState {
        rnns,
        outs,
        dys,
        dx_backward,
    } = &mut **st;
    for g in dys.iter_mut() {
        sized(g, &shape);
    }
    {
        let (df, db) = dys.split_at_mut(1);
        let missing = || ctx.internal("bidirectional buffers are not contiguous");
        let (f, b) = (
            outs[0].as_slice().ok_or_else(missing)?,
            outs[1].as_slice().ok_or_else(missing)?,
        );
        let dy = dy.as_slice().ok_or_else(missing)?;
        let df = df[0].as_slice_mut().ok_or_else(missing)?;
        let db = db[0].as_slice_mut().ok_or_else(missing)?;
        split_gradient(bi.merge, dims(&shape), (f, b), dy, (df, db));
    }
    sized(dx_backward, xv.shape());
    let needed = grads.needs(v);
    let mut dx = grads.take_value(v)?;
    for d in 0..2 {
        let w = bi.weights[d];
        let rp = weights(ctx, params, w)?;
        let (mut dk, mut dr, mut db) = (
            grads.take_param(w.kernel)?,
            grads.take_param(w.recurrent)?,
            grads.take_param(w.bias)?,
        );
        {
            let dx_view = if d == 0 {
                input_target(&mut dx, needed)?
            } else {
                dx_backward.view_mut()
            };
            let g = RnnGrads {
                dx: ctx.rank_mut::<f32, Ix3>(dx_view)?,
                dkernel: ctx.rank_mut::<f32, Ix2>(dk.target()?)?,
                drecurrent: ctx.rank_mut::<f32, Ix2>(dr.target()?)?,
                dbias: db.target()?,
            };
            rnn_backward_sliced(bi.cell, xv, &rp, &mut rnns[d], dys[d].view(), g)
                .map_err(|e| ctx.kernel(e))?;
        }
        grads.put_param(w.kernel, dk);
        grads.put_param(w.recurrent, dr);
        grads.put_param(w.bias, db);
    }
    if needed {
        let mut target = dx.target()?;
        // `target` already holds the forward direction's dx (written above, not yet
        // committed): add the backward direction's.
        target += &*dx_backward;
    }
    grads.put_value(v, dx, needed);
    Ok(())
}

/// The interpreter's state of a bidirectional step.
pub(crate) fn infer_state() -> StepState {
    StepState::Bidirectional(Box::default())
}

/// The trainer's state of a bidirectional step.
pub(crate) fn train_state() -> TrainState {
    TrainState::Bidirectional(Box::default())
}
