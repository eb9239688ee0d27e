//! Ops that only move or convert values: flatten, reshape and cast.
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`]. Output: input 0's
//! values in the output's shape (or type), or `dy` passed back unchanged. Invariants: in
//! inference flatten and reshape are views (they read their input's buffer as is, see
//! [`infer`]); integer outputs (casts to integers, views of ids) are the interpreter's
//! `run_int_step`; an integer input gets no gradient.

use crate::ir::{DType, Op};
use crate::runtime::interp::exec::{copy_first, InferStep};
use crate::runtime::interp::RunError;
use crate::runtime::train::backward::{unary, BackwardStep};
use crate::runtime::train::forward::{copy_flat, ForwardStep};
use crate::runtime::train::{Input, TrainError};

/// Inference of flatten, reshape and an f32 cast: the output holds input 0 (a copy, a
/// conversion of integers, or nothing to do when it shares the buffer). Dropout in inference
/// is the same.
pub(crate) fn infer(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        out_b,
        dst,
        ..
    } = s;
    copy_first(ctx, memory, out_b, dst)
}

/// Training forward of flatten and reshape: a row-major copy.
pub(crate) fn forward(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        out,
        ..
    } = f;
    copy_flat(ctx, &env.f32(ctx.arg(step, 0)?)?, out)
}

/// Training forward of a cast to f32 (the trainer has no integer values to cast to).
pub(crate) fn forward_cast(f: ForwardStep<'_, '_, '_>, to: DType) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        out,
        ..
    } = f;
    if to != DType::F32 {
        return Err(ctx.unsupported("casts to integer types inside a training plan"));
    }
    let v = ctx.arg(step, 0)?;
    match env.input(v) {
        Some(Input::I32(ids)) => out
            .iter_mut()
            .zip(ids.iter())
            .for_each(|(o, &i)| *o = i as f32),
        Some(Input::I64(ids)) => out
            .iter_mut()
            .zip(ids.iter())
            .for_each(|(o, &i)| *o = i as f32),
        _ => copy_flat(ctx, &env.f32(v)?, out)?,
    }
    Ok(())
}

/// Backward of flatten, reshape and cast: `dy` copied into input 0's gradient (none for an
/// integer input).
pub(crate) fn backward(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        dy,
        grads,
        ..
    } = b;
    if matches!(
        env.input(ctx.arg(step, 0)?),
        Some(Input::I32(_) | Input::I64(_))
    ) {
        return Ok(());
    }
    unary(ctx, step, grads, |mut dx| {
        match (dx.as_slice_mut(), dy.as_slice()) {
            (Some(d), Some(g)) if d.len() == g.len() => d.copy_from_slice(g),
            _ => return Err(ctx.internal("reshape gradient of another size")),
        }
        Ok(())
    })
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        Op::Flatten | Op::Reshape { .. } | Op::Cast { .. } => infer(s),
        other => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        Op::Flatten | Op::Reshape { .. } => forward(f),
        Op::Cast { to } => forward_cast(f, *to),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        Op::Flatten | Op::Reshape { .. } | Op::Cast { .. } => backward(b),
        other => Err(super::misrouted_train(step, other)),
    }
}
