//! Embeddings: rows of a `[vocab, dim]` table looked up by integer token ids.
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] and the table.
//! Output: the looked-up rows (inference, training forward) or the table's gradient
//! (backward, rows summed per id). Invariants: ids are an integer value (the interpreter's
//! `i64` store, or the trainer's integer model inputs); an id outside the table is the
//! kernel's `IdOutOfRange`, never a panic. The ids get no gradient.

use ndarray::{ArrayViewD, Ix2, IxDyn};

use crate::ir::{Op, ParamId};
use crate::runtime::interp::exec::{plan_err, view_mut, InferStep};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::embedding::{embedding_backward, embedding_forward};
use crate::runtime::train::backward::BackwardStep;
use crate::runtime::train::forward::{param, ForwardStep};
use crate::runtime::train::{Input, TrainError};

/// Inference: the rows of `table` for the ids of input 0.
pub(crate) fn infer(s: InferStep<'_, '_>, table: ParamId) -> Result<(), RunError> {
    let InferStep {
        ctx, memory, dst, ..
    } = s;
    let step = ctx.step;
    let out_shape = ctx.shape(step.output)?;
    let x = ctx.input(0)?;
    let ids = memory
        .ints
        .get(x as usize)
        .ok_or_else(|| plan_err(step, "ids missing"))?;
    let ids = ArrayViewD::from_shape(IxDyn(ctx.shape(x)?), ids.as_slice())
        .map_err(|e| plan_err(step, &e.to_string()))?;
    let t = ctx.matrix(table)?;
    ctx.kernel(embedding_forward(ids, t, view_mut(dst, out_shape, ctx)?))
}

/// Training forward: the same lookup over an integer model input.
pub(crate) fn forward(f: ForwardStep<'_, '_, '_>, table: ParamId) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        params,
        out,
        ..
    } = f;
    let t = ctx.rank::<f32, Ix2>(param(ctx, params, table)?)?;
    match env.input(ctx.arg(step, 0)?) {
        Some(Input::I32(ids)) => embedding_forward(ids.view(), t, out.view_mut()),
        Some(Input::I64(ids)) => embedding_forward(ids.view(), t, out.view_mut()),
        _ => {
            return Err(ctx.unsupported(
                "embedding ids must be an integer model input (not a computed value)",
            ))
        }
    }
    .map_err(|e| ctx.kernel(e))
}

/// Backward: `dy`'s rows summed into the table's gradient at their ids.
pub(crate) fn backward(b: BackwardStep<'_, '_, '_, '_>, table: ParamId) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        dy,
        grads,
        ..
    } = b;
    let mut dt = grads.take_param(table)?;
    let target = ctx.rank_mut::<f32, Ix2>(dt.target()?)?;
    match env.input(ctx.arg(step, 0)?) {
        Some(Input::I32(ids)) => embedding_backward(ids.view(), dy.view(), target),
        Some(Input::I64(ids)) => embedding_backward(ids.view(), dy.view(), target),
        _ => return Err(ctx.unsupported("embedding ids must be an integer model input")),
    }
    .map_err(|e| ctx.kernel(e))?;
    grads.put_param(table, dt);
    Ok(())
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        Op::Embedding { table } => infer(s, *table),
        other => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        Op::Embedding { table } => forward(f, *table),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        Op::Embedding { table } => backward(b, *table),
        other => Err(super::misrouted_train(step, other)),
    }
}
