//! What the trainer derives from its plan once, in `Trainer::new`: each step's kept state,
//! which values need a gradient, the conv + max pool pairs whose relu derivative the pool
//! applies, and the convs that compute only what a `valid` pool after them reads.
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
use crate::runtime::kernels::pool::{Pool2dParams, PoolKind, PoolPadding};

/// Each step's kept state (workspaces, caches, statistics, masks), empty until the first
/// batch sizes them; an error for a step the trainer cannot run.
pub(super) fn step_states(
    plan: &ExecutionPlan,
    input_pos: &[Option<usize>],
) -> Result<Vec<StepState>, TrainError> {
    let n_values = plan.values.len();
    let relu_in_pool = relu_through_pool(plan);
    let crops = pool_crops(plan);
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
        let mut kept = crate::runtime::ops::train_state(&step.op, relu_in_pool);
        if let StepState::Conv { crop, .. } = &mut kept {
            *crop = crops.get(i).copied().flatten();
        }
        state.push(kept);
    }
    Ok(state)
}

/// Who reads and who writes each plan value, from one pass over the steps: the trainer's
/// pairings of a step with the one that alone reads its output look their partners up here
/// instead of scanning the plan for each (which would be quadratic in its size).
pub(crate) struct ValueLinks {
    readers: Vec<usize>,
    producer: Vec<Option<usize>>,
    is_output: Vec<bool>,
}

impl ValueLinks {
    pub(crate) fn of(plan: &ExecutionPlan) -> Self {
        let n = plan.values.len();
        let (mut readers, mut producer, mut is_output) =
            (vec![0; n], vec![None; n], vec![false; n]);
        for (i, step) in plan.steps.iter().enumerate() {
            for &v in &step.inputs {
                if let Some(r) = readers.get_mut(v as usize) {
                    *r += 1;
                }
            }
            if let Some(p) = producer.get_mut(step.output as usize) {
                *p = Some(i);
            }
        }
        for &v in &plan.outputs {
            if let Some(o) = is_output.get_mut(v as usize) {
                *o = true;
            }
        }
        Self {
            readers,
            producer,
            is_output,
        }
    }

    /// The step that writes value `v`, if any.
    pub(crate) fn producer(&self, v: u32) -> Option<usize> {
        self.producer.get(v as usize).copied().flatten()
    }

    /// Whether value `v` is read by exactly one step and is not a plan output.
    pub(crate) fn read_once(&self, v: u32) -> bool {
        self.readers.get(v as usize) == Some(&1)
            && !self.is_output.get(v as usize).copied().unwrap_or(false)
    }
}

/// The (conv, pool) step pairs of a plan: a conv2d or conv1d step whose output one 2-D or 1-D
/// max or average pool alone reads (no other step, not a plan output), with that pool; linear
/// in the plan's size ([`ValueLinks`]).
fn conv_pool_pairs(plan: &ExecutionPlan) -> Vec<(usize, usize)> {
    let links = ValueLinks::of(plan);
    let mut pairs = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let (
            Op::MaxPool2d { .. }
            | Op::MaxPool1d { .. }
            | Op::AvgPool2d { .. }
            | Op::AvgPool1d { .. },
            [v],
        ) = (&step.op, step.inputs.as_slice())
        else {
            continue;
        };
        let only_reader = links.read_once(*v);
        let Some(j) = links.producer(*v) else {
            continue;
        };
        let conv = plan
            .steps
            .get(j)
            .is_some_and(|c| matches!(c.op, Op::Conv2d { .. } | Op::Conv1d { .. }));
        if only_reader && conv {
            pairs.push((j, i));
        }
    }
    pairs
}

/// Per step: whether it is one of a pair (a conv2d or conv1d with a fused relu, and the max
/// pool, 2-D or 1-D, that is the only reader of its output) whose relu derivative the pool's
/// backward applies while it routes the gradient (`PoolBackward::relu_input`): one pass less
/// over the conv's output and its gradient, the largest tensors of a CNN. The bits are those
/// of the separate derivative
/// (`train::tests::fast_paths::relu_through_pool_gives_the_plain_gradients_bit_for_bit`; the
/// kernel alone: `kernels::tests::pool_paths::pool_backward_through_a_relu_is_the_relu_derivative_after_the_pool`).
pub(crate) fn relu_through_pool(plan: &ExecutionPlan) -> Vec<bool> {
    let mut flags = vec![false; plan.steps.len()];
    for (j, i) in conv_pool_pairs(plan) {
        let (Some(conv), Some(pool)) = (plan.steps.get(j), plan.steps.get(i)) else {
            continue;
        };
        let relu = matches!(
            conv.op,
            Op::Conv2d {
                activation: Activation::Relu,
                ..
            } | Op::Conv1d {
                activation: Activation::Relu,
                ..
            }
        );
        if relu && matches!(pool.op, Op::MaxPool2d { .. } | Op::MaxPool1d { .. }) {
            flags[i] = true;
            flags[j] = true;
        }
    }
    flags
}

/// Per step: for a conv2d or conv1d whose output a `valid`-padding max or average pool alone
/// reads, that pool. Such a pool never reads the output rows and columns past its last window
/// (floor mode, `Pool2dParams::reach`), whose gradient is then zero: the conv's training
/// forward computes only the pixels the pool reaches (the others zero) and its backward runs
/// its products over those alone (`kernels::conv::conv2d_forward_reached`,
/// `conv2d_backward_reached`). In the seed CNN, 100 of conv2's 121 output pixels are read and 4
/// of conv3's 9. The gradients have the whole output's bits
/// (`train::tests::crop::cropped_training_gives_the_uncropped_gradients_bit_for_bit`).
pub(crate) fn pool_crops(plan: &ExecutionPlan) -> Vec<Option<Pool2dParams>> {
    let mut crops = vec![None; plan.steps.len()];
    for (j, i) in conv_pool_pairs(plan) {
        let Some(pool) = plan.steps.get(i) else {
            continue;
        };
        let (kind, window) = match &pool.op {
            Op::MaxPool2d { window } | Op::MaxPool1d { window } => (PoolKind::Max, window),
            Op::AvgPool2d { window } | Op::AvgPool1d { window } => (PoolKind::Avg, window),
            _ => continue,
        };
        let Ok(params) = context::pool_params(&context::Ctx::of(pool), kind, window) else {
            continue; // the pool's own step reports it
        };
        if let (PoolPadding::Valid, Some(c)) = (params.padding, crops.get_mut(j)) {
            *c = Some(params);
        }
    }
    crops
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
