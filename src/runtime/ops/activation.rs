//! Activation steps (`Op::Activation`): relu, leaky relu, sigmoid, tanh, gelu, softmax over
//! the last axis, and linear.
//!
//! Input: a step's [`InferStep`], [`ForwardStep`] or [`BackwardStep`] and the activation.
//! Output: the step's value, or input 0's gradient from `x`, `y` and `dy`. Invariants:
//! inference runs in place over input 0's copy; the trainer's fused softmax + cross-entropy
//! skips a final softmax step's backward altogether (see `runtime::train`). Activations fused
//! into a conv or dense are those ops' (`train::fused`, `interp::elementwise`).

use crate::ir::{Activation, Op};
use crate::runtime::interp::elementwise::activation_in_place;
use crate::runtime::interp::exec::{copy_first, last_dim, InferStep};
use crate::runtime::interp::RunError;
use crate::runtime::kernels::activation::{activation_backward, activation_forward};
use crate::runtime::train::backward::{unary, BackwardStep};
use crate::runtime::train::context;
use crate::runtime::train::forward::ForwardStep;
use crate::runtime::train::TrainError;

/// Inference: input 0's copy activated in place.
pub(crate) fn infer(s: InferStep<'_, '_>, a: Activation) -> Result<(), RunError> {
    let InferStep {
        ctx,
        memory,
        out_b,
        dst,
        ..
    } = s;
    copy_first(ctx, memory, out_b, dst)?;
    activation_in_place(a, dst, last_dim(ctx)?);
    Ok(())
}

/// Training forward.
pub(crate) fn forward(f: ForwardStep<'_, '_, '_>, a: Activation) -> Result<(), TrainError> {
    let ForwardStep {
        step,
        ctx,
        env,
        out,
        ..
    } = f;
    let xv = env.f32(ctx.arg(step, 0)?)?;
    let act = context::activation(a, xv.ndim());
    activation_forward(act, xv, out.view_mut()).map_err(|e| ctx.kernel(e))
}

/// Backward into input 0's gradient.
pub(crate) fn backward(b: BackwardStep<'_, '_, '_, '_>, a: Activation) -> Result<(), TrainError> {
    let BackwardStep {
        step,
        ctx,
        env,
        y,
        dy,
        grads,
        ..
    } = b;
    let xv = env.f32(ctx.arg(step, 0)?)?;
    let act = context::activation(a, xv.ndim());
    unary(ctx, step, grads, |dx| {
        activation_backward(act, xv, y.view(), dy.view(), dx).map_err(|e| ctx.kernel(e))
    })
}

/// The family's inference step: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn infer_op(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        Op::Activation(a) => infer(s, *a),
        other => Err(super::misrouted_run(step, other)),
    }
}

/// The family's training forward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn forward_op(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        Op::Activation(a) => forward(f, *a),
        other => Err(super::misrouted_train(step, other)),
    }
}

/// The family's backward: one arm per op of the family (called by `runtime::ops`).
pub(crate) fn backward_op(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        Op::Activation(a) => backward(b, *a),
        other => Err(super::misrouted_train(step, other)),
    }
}
