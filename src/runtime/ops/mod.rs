//! The runtime of each op, by op family: one module per family holds the family's inference
//! step (the interpreter's), its training forward and its backward (the trainer's), side by
//! side; this module's three dispatchers route a plan step to them.
//!
//! Input: a step's phase context — [`InferStep`] (the interpreter's buffers and the output
//! slice), [`ForwardStep`] (the trainer's values, parameters, step state and semantics) or
//! [`BackwardStep`] (the same plus `y`, `dy` and the gradient slots). Output: the step's value
//! written into its output, or its contributions to the gradients. Invariants: the
//! dispatchers hold no logic: they route a step by its op's [`Family`] (the same families as
//! `crate::ops`), and each family's `infer_op`, `forward_op` and `backward_op` hold one arm per
//! op of the family; the phase plumbing (buffer lending, value storage, gradient slots) stays in
//! `interp::exec`, `train::forward` and `train::backward`, which call the dispatchers.
//!
//! Adding a layer of an existing family to the runtime: its functions in the family's module and
//! one arm in each of the family's `infer_op`, `forward_op` and `backward_op`; this module does
//! not change. A new family adds a module here and one arm per dispatcher. The fast
//! paths (dense + mse, relu through pool, sliced conv, fused conv + pool, the 2x2 max pool)
//! are documented in their family's module and listed in ARCHITECTURE.md, `## Fast paths`.

pub(crate) mod activation;
pub(crate) mod affine;
pub(crate) mod attention;
pub(crate) mod bidirectional;
pub(crate) mod conv;
pub(crate) mod dense;
pub(crate) mod dropout;
pub(crate) mod embedding;
pub(crate) mod merge;
pub(crate) mod norm;
pub(crate) mod padding;
pub(crate) mod pool;
pub(crate) mod recurrent;
pub(crate) mod recurrent_fold;
pub(crate) mod reshape;
pub(crate) mod separable;
pub(crate) mod upsample;

use crate::ir::Op;
use crate::ops::op::Family;
use crate::plan::Step;
use crate::runtime::interp::exec::{plan_err, InferStep, StepState as InferState};
use crate::runtime::interp::RunError;
use crate::runtime::train::backward::BackwardStep;
use crate::runtime::train::context::StepState as TrainState;
use crate::runtime::train::forward::ForwardStep;
use crate::runtime::train::TrainError;

/// Inference of one f32 step (the interpreter's semantics: moving statistics, no dropout).
pub(crate) fn infer_step(s: InferStep<'_, '_>) -> Result<(), RunError> {
    match s.ctx.step.op.family() {
        Family::Dense => dense::infer_op(s),
        Family::Conv => conv::infer_op(s),
        Family::Pool => pool::infer_op(s),
        Family::Reshape => reshape::infer_op(s),
        Family::Norm => norm::infer_op(s),
        Family::Dropout => dropout::infer_op(s),
        Family::Embedding => embedding::infer_op(s),
        Family::Recurrent => recurrent::infer_op(s),
        Family::Merge => merge::infer_op(s),
        Family::Activation => activation::infer_op(s),
        Family::Attention => attention::infer_op(s),
        Family::Upsample => upsample::infer_op(s),
    }
}

/// Training forward of one step, in training or inference semantics.
pub(crate) fn forward_step(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    match f.step.op.family() {
        Family::Dense => dense::forward_op(f),
        Family::Conv => conv::forward_op(f),
        Family::Pool => pool::forward_op(f),
        Family::Reshape => reshape::forward_op(f),
        Family::Norm => norm::forward_op(f),
        Family::Dropout => dropout::forward_op(f),
        Family::Embedding => embedding::forward_op(f),
        Family::Recurrent => recurrent::forward_op(f),
        Family::Merge => merge::forward_op(f),
        Family::Activation => activation::forward_op(f),
        Family::Attention => attention::forward_op(f),
        Family::Upsample => upsample::forward_op(f),
    }
}

/// Backward of one step, from its output's complete gradient.
pub(crate) fn backward_step(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    match b.step.op.family() {
        Family::Dense => dense::backward_op(b),
        Family::Conv => conv::backward_op(b),
        Family::Pool => pool::backward_op(b),
        Family::Reshape => reshape::backward_op(b),
        Family::Norm => norm::backward_op(b),
        Family::Dropout => dropout::backward_op(b),
        Family::Embedding => embedding::backward_op(b),
        Family::Recurrent => recurrent::backward_op(b),
        Family::Merge => merge::backward_op(b),
        Family::Activation => activation::backward_op(b),
        Family::Attention => attention::backward_op(b),
        Family::Upsample => upsample::backward_op(b),
    }
}

/// The scratch a step of `op` keeps between interpreter calls (its family's).
pub(crate) fn infer_state(op: &Op) -> InferState {
    match op.family() {
        Family::Conv => conv::infer_state(op),
        Family::Recurrent => recurrent::infer_state(op),
        Family::Attention => attention::infer_state(op),
        _ => InferState::None,
    }
}

/// The state a step of `op` keeps between training steps (its family's); `paired` says the
/// step is one of a relu-through-pool pair (`train::setup::relu_through_pool`).
pub(crate) fn train_state(op: &Op, paired: bool) -> TrainState {
    match op.family() {
        Family::Conv => conv::train_state(op, paired),
        Family::Pool => pool::train_state(op, paired),
        Family::Recurrent => recurrent::train_state(op),
        Family::Norm => norm::train_state(op),
        Family::Dropout => dropout::train_state(op),
        Family::Attention => attention::train_state(op),
        _ => TrainState::Stateless,
    }
}

/// A step routed to a family that does not hold its op (a dispatch bug, reported as a plan
/// error rather than a panic).
fn misrouted_run(step: &Step, op: &Op) -> RunError {
    plan_err(
        step,
        &format!("internal: {} routed to the wrong op family", op.kind()),
    )
}

/// The trainer's form of [`misrouted_run`].
fn misrouted_train(step: &Step, op: &Op) -> TrainError {
    TrainError::Internal(format!(
        "step `{}`: {} routed to the wrong op family",
        step.name,
        op.kind()
    ))
}
