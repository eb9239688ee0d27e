//! The runtime of each op, by op family: one module per family holds the family's inference
//! step (the interpreter's), its training forward and its backward (the trainer's), side by
//! side; this module's three dispatchers route a plan step to them.
//!
//! Input: a step's phase context — [`InferStep`] (the interpreter's buffers and the output
//! slice), [`ForwardStep`] (the trainer's values, parameters, step state and semantics) or
//! [`BackwardStep`] (the same plus `y`, `dy` and the gradient slots). Output: the step's value
//! written into its output, or its contributions to the gradients. Invariants: the
//! dispatchers hold no logic, one arm per op calling its family; the phase plumbing (buffer
//! lending, value storage, gradient slots) stays in `interp::exec`, `train::forward` and
//! `train::backward`, which call the dispatchers.
//!
//! Adding a layer to the runtime: a family module here (or functions in an existing one),
//! plus one arm in each of [`infer_step`], [`forward_step`] and [`backward_step`]. The fast
//! paths (dense + mse, relu through pool, sliced conv, fused conv + pool, the 2x2 max pool)
//! are documented in their family's module and listed in ARCHITECTURE.md, `## Fast paths`.

pub(crate) mod activation;
pub(crate) mod affine;
pub(crate) mod conv;
pub(crate) mod dense;
pub(crate) mod dropout;
pub(crate) mod embedding;
pub(crate) mod merge;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod recurrent;
pub(crate) mod reshape;

use crate::ir::Op;
use crate::runtime::interp::exec::InferStep;
use crate::runtime::interp::RunError;
use crate::runtime::kernels::pool::PoolKind;
use crate::runtime::train::backward::BackwardStep;
use crate::runtime::train::forward::ForwardStep;
use crate::runtime::train::TrainError;
use norm::BatchNormIds;
use recurrent::RnnIds;

/// Inference of one f32 step (the interpreter's semantics: moving statistics, no dropout).
pub(crate) fn infer_step(s: InferStep<'_, '_>) -> Result<(), RunError> {
    let step = s.ctx.step;
    match &step.op {
        Op::Conv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => conv::infer(s, window, *kernel, *bias, *activation),
        Op::Dense {
            kernel,
            bias,
            activation,
            units,
        } => dense::infer(s, *kernel, *bias, *activation, *units),
        Op::MaxPool2d { window } => pool::infer(s, PoolKind::Max, window),
        Op::AvgPool2d { window } => pool::infer(s, PoolKind::Avg, window),
        Op::GlobalMaxPool2d => pool::infer_global(s, PoolKind::Max),
        Op::GlobalAvgPool2d => pool::infer_global(s, PoolKind::Avg),
        Op::Flatten | Op::Reshape { .. } | Op::Cast { .. } => reshape::infer(s),
        Op::Dropout { .. } => dropout::infer(s),
        Op::Activation(a) => activation::infer(s, *a),
        Op::Affine { scale, shift } => affine::infer(s, scale, shift),
        Op::BatchNorm {
            gamma,
            beta,
            mean,
            variance,
            epsilon,
            ..
        } => norm::infer_batch_norm(
            s,
            BatchNormIds {
                gamma: *gamma,
                beta: *beta,
                mean: *mean,
                variance: *variance,
                epsilon: *epsilon,
            },
        ),
        Op::LayerNorm {
            gamma,
            beta,
            epsilon,
        } => norm::infer_layer_norm(s, *gamma, *beta, *epsilon),
        Op::Embedding { table } => embedding::infer(s, *table),
        Op::Rnn {
            cell,
            return_sequences,
            kernel,
            recurrent,
            bias,
            ..
        } => recurrent::infer(
            s,
            RnnIds {
                cell: *cell,
                return_sequences: *return_sequences,
                kernel: *kernel,
                recurrent: *recurrent,
                bias: *bias,
            },
        ),
        Op::EmbeddedRnn {
            cell,
            return_sequences,
            projection,
            recurrent,
            bias,
            ..
        } => recurrent::infer_embedded(
            s,
            RnnIds {
                cell: *cell,
                return_sequences: *return_sequences,
                kernel: *projection,
                recurrent: *recurrent,
                bias: *bias,
            },
        ),
        Op::Add => merge::infer_add(s),
        Op::Concat { axis } => merge::infer_concat(s, *axis),
    }
}

/// Training forward of one step, in training or inference semantics.
pub(crate) fn forward_step(f: ForwardStep<'_, '_, '_>) -> Result<(), TrainError> {
    let step = f.step;
    match &step.op {
        Op::Conv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => conv::forward(f, window, *kernel, *bias, *activation),
        Op::Dense {
            kernel,
            bias,
            activation,
            ..
        } => dense::forward(f, *kernel, *bias, *activation),
        Op::MaxPool2d { window } => pool::forward(f, PoolKind::Max, window),
        Op::AvgPool2d { window } => pool::forward(f, PoolKind::Avg, window),
        Op::GlobalMaxPool2d => pool::forward_global(f, PoolKind::Max),
        Op::GlobalAvgPool2d => pool::forward_global(f, PoolKind::Avg),
        Op::Flatten | Op::Reshape { .. } => reshape::forward(f),
        Op::Cast { to } => reshape::forward_cast(f, *to),
        Op::Dropout { rate } => dropout::forward(f, *rate),
        Op::Activation(a) => activation::forward(f, *a),
        Op::Affine { scale, shift } => affine::forward(f, scale, shift),
        Op::BatchNorm {
            gamma,
            beta,
            mean,
            variance,
            epsilon,
            ..
        } => norm::forward_batch_norm(
            f,
            BatchNormIds {
                gamma: *gamma,
                beta: *beta,
                mean: *mean,
                variance: *variance,
                epsilon: *epsilon,
            },
        ),
        Op::LayerNorm {
            gamma,
            beta,
            epsilon,
        } => norm::forward_layer_norm(f, *gamma, *beta, *epsilon),
        Op::Embedding { table } => embedding::forward(f, *table),
        Op::Rnn {
            cell,
            return_sequences,
            kernel,
            recurrent,
            bias,
            ..
        } => recurrent::forward(
            f,
            RnnIds {
                cell: *cell,
                return_sequences: *return_sequences,
                kernel: *kernel,
                recurrent: *recurrent,
                bias: *bias,
            },
        ),
        Op::EmbeddedRnn { .. } => recurrent::train_embedded(f.ctx),
        Op::Add => merge::forward_add(f),
        Op::Concat { axis } => merge::forward_concat(f, *axis),
    }
}

/// Backward of one step, from its output's complete gradient.
pub(crate) fn backward_step(b: BackwardStep<'_, '_, '_, '_>) -> Result<(), TrainError> {
    let step = b.step;
    match &step.op {
        Op::Conv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => conv::backward(b, window, *kernel, *bias, *activation),
        Op::Dense {
            kernel,
            bias,
            activation,
            ..
        } => dense::backward(b, *kernel, *bias, *activation),
        Op::MaxPool2d { window } => pool::backward(b, PoolKind::Max, window),
        Op::AvgPool2d { window } => pool::backward(b, PoolKind::Avg, window),
        Op::GlobalMaxPool2d => pool::backward_global(b, PoolKind::Max),
        Op::GlobalAvgPool2d => pool::backward_global(b, PoolKind::Avg),
        Op::Flatten | Op::Reshape { .. } | Op::Cast { .. } => reshape::backward(b),
        Op::Dropout { .. } => dropout::backward(b),
        Op::Activation(a) => activation::backward(b, *a),
        Op::Affine { scale, .. } => affine::backward(b, scale),
        Op::BatchNorm {
            gamma,
            beta,
            mean,
            variance,
            epsilon,
            ..
        } => norm::backward_batch_norm(
            b,
            BatchNormIds {
                gamma: *gamma,
                beta: *beta,
                mean: *mean,
                variance: *variance,
                epsilon: *epsilon,
            },
        ),
        Op::LayerNorm {
            gamma,
            beta,
            epsilon,
        } => norm::backward_layer_norm(b, *gamma, *beta, *epsilon),
        Op::Embedding { table } => embedding::backward(b, *table),
        Op::Rnn {
            cell,
            return_sequences,
            kernel,
            recurrent,
            bias,
            ..
        } => recurrent::backward(
            b,
            RnnIds {
                cell: *cell,
                return_sequences: *return_sequences,
                kernel: *kernel,
                recurrent: *recurrent,
                bias: *bias,
            },
        ),
        Op::EmbeddedRnn { .. } => recurrent::train_embedded(b.ctx),
        Op::Add => merge::backward_add(b),
        Op::Concat { axis } => merge::backward_concat(b, *axis),
    }
}
