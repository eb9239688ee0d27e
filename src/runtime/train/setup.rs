//! What the trainer derives from its plan once, in `Trainer::new`: each step's kept state,
//! which values need a gradient, and the conv + max pool pairs whose relu derivative the pool
//! applies.
//!
//! Input: a training plan (and the model inputs' positions). Output: per-step [`StepState`]s
//! and per-step or per-value flags. Invariants: a plan the trainer cannot run (an
//! `Op::EmbeddedRnn`, a step producing integers, a fused activation without a derivative) is
//! refused here, before any buffer exists.

use super::context::{self, StepState};
use super::error::{internal, TrainError};
use super::{fused, INFERENCE_ONLY};
use crate::ir::{Activation, DType, Op};
use crate::plan::ExecutionPlan;

/// Each step's kept state (workspaces, caches, statistics, masks), empty until the first
/// batch sizes them; an error for a step the trainer cannot run.
pub(super) fn step_states(
    plan: &ExecutionPlan,
    input_pos: &[Option<usize>],
) -> Result<Vec<StepState>, TrainError> {
    let n_values = plan.values.len();
    let relu_in_pool = relu_through_pool(plan);
    let mut state = Vec::with_capacity(plan.steps.len());
    for (i, step) in plan.steps.iter().enumerate() {
        let ctx = context::Ctx::of(step);
        let out = plan
            .values
            .get(step.output as usize)
            .ok_or_else(|| internal("step output out of range"))?;
        if matches!(step.op, Op::EmbeddedRnn { .. }) {
            return Err(ctx.internal(INFERENCE_ONLY));
        }
        if out.fact.dtype != DType::F32
            || input_pos
                .get(step.output as usize)
                .copied()
                .flatten()
                .is_some()
        {
            return Err(ctx.unsupported("steps producing integer values"));
        }
        if step.inputs.iter().any(|&v| v as usize >= n_values) {
            return Err(internal(format!(
                "step `{}` reads a missing value",
                step.name
            )));
        }
        if let Op::Conv2d { activation, .. }
        | Op::Dense { activation, .. }
        | Op::Conv1d { activation, .. }
        | Op::DepthwiseConv2d { activation, .. }
        | Op::SeparableConv2d { activation, .. }
        | Op::Conv2dTranspose { activation, .. } = step.op
        {
            if !fused::supported(activation) {
                return Err(ctx.unsupported(format!("fused {} activation", activation.name())));
            }
        }
        let relu_in_pool = relu_in_pool.get(i).copied().unwrap_or(false);
        state.push(crate::runtime::ops::train_state(&step.op, relu_in_pool));
    }
    Ok(state)
}

/// Per step: whether it is one of a pair (a conv2d or conv1d with a fused relu, and the max
/// pool, 2-D or 1-D, that is the only reader of its output) whose relu derivative the pool's backward applies while it
/// routes the gradient (`PoolBackward::relu_input`): one pass less over the conv's output and
/// its gradient, the largest tensors of a CNN. The bits are those of the separate derivative
/// (`train::tests::fast_paths::relu_through_pool_gives_the_plain_gradients_bit_for_bit`; the
/// kernel alone: `kernels::tests::pool_paths::pool_backward_through_a_relu_is_the_relu_derivative_after_the_pool`).
pub(crate) fn relu_through_pool(plan: &ExecutionPlan) -> Vec<bool> {
    let mut flags = vec![false; plan.steps.len()];
    let mut readers = vec![0usize; plan.values.len()];
    for step in &plan.steps {
        for &v in &step.inputs {
            if let Some(r) = readers.get_mut(v as usize) {
                *r += 1;
            }
        }
    }
    let producer = |v: u32| plan.steps.iter().position(|s| s.output == v);
    for (i, step) in plan.steps.iter().enumerate() {
        let (Op::MaxPool2d { .. } | Op::MaxPool1d { .. }, [v]) = (&step.op, step.inputs.as_slice())
        else {
            continue;
        };
        let only_reader = readers.get(*v as usize) == Some(&1) && !plan.outputs.contains(v);
        let Some(j) = producer(*v).filter(|_| only_reader) else {
            continue;
        };
        if let Op::Conv2d {
            activation: Activation::Relu,
            ..
        }
        | Op::Conv1d {
            activation: Activation::Relu,
            ..
        } = plan.steps[j].op
        {
            flags[i] = true;
            flags[j] = true;
        }
    }
    flags
}

/// Per plan value: whether a gradient must flow into it (a trainable parameter, or a model
/// input when `inputs` is set, is upstream of it).
pub(super) fn gradient_needs(
    plan: &ExecutionPlan,
    trainable: &[bool],
    input_pos: &[Option<usize>],
    inputs: bool,
) -> Vec<bool> {
    let mut needs: Vec<bool> = (0..plan.values.len())
        .map(|v| {
            inputs
                && input_pos.get(v).copied().flatten().is_some()
                && plan
                    .values
                    .get(v)
                    .is_some_and(|x| x.fact.dtype == DType::F32)
        })
        .collect();
    for step in &plan.steps {
        let has_trainable = step
            .op
            .params()
            .iter()
            .any(|p| trainable.get(p.index()).copied().unwrap_or(false));
        let upstream = step
            .inputs
            .iter()
            .any(|&v| needs.get(v as usize).copied().unwrap_or(false));
        if let Some(n) = needs.get_mut(step.output as usize) {
            *n = has_trainable || upstream;
        }
    }
    needs
}
