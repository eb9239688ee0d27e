//! Training a model with several outputs: one loss per output, weighted (`loss_weights`).
//!
//! Input: a batch's inputs and, per plan output in order, its targets, loss and weight wᵢ.
//! Output: the total loss `Σ wᵢ·lossᵢ` and each unweighted `lossᵢ` (what Keras logs as `loss`
//! and `<name>_loss`), after the optimizer step.
//!
//! How: one training forward; each output's loss and gradient (a softmax output under
//! cross-entropy from probabilities is taken on its logits, as in the single-output step, when
//! no other step reads the probabilities); the gradients scaled by wᵢ seed backward together
//! (`run_backward_seeds`: a value both seeded and read downstream receives the sum), then the
//! guard, clipping and optimizer as for one output. A value several outputs share upstream
//! gets `Σ wᵢ·∂lossᵢ/∂value`, the gradient of the total.

use ndarray::{ArrayD, ArrayViewD};

use super::context::Env;
use super::error::internal;
use super::{Clip, Input, StepReport, TrainError, Trainer};
use crate::ir::{Activation, Op};
use crate::runtime::loss::{softmax_cross_entropy, Loss, Targets};
use crate::runtime::optim::Optimizer;

/// One output's part of a step: its targets, its loss and its weight in the total.
#[derive(Debug, Clone)]
pub struct OutputLoss<'a> {
    pub targets: Targets<'a>,
    pub loss: Loss,
    /// `loss_weights`: the factor of this output's loss in the total (Keras's default 1).
    pub weight: f32,
}

/// What a step over several outputs measured.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputsReport {
    /// The total `Σ wᵢ·lossᵢ` and the gradient norm, as for one output.
    pub step: StepReport,
    /// Each output's own (unweighted) mean loss, in the plan's output order.
    pub losses: Vec<f32>,
}

impl Trainer {
    /// The model's outputs after a forward over a batch, in the plan's order; they stay valid
    /// until the next call. `training` as in [`Self::forward`].
    pub fn forward_outputs(
        &mut self,
        inputs: &[Input<'_>],
        training: bool,
    ) -> Result<Vec<ArrayViewD<'_, f32>>, TrainError> {
        let r = self.run_forward(inputs, training);
        if r.is_err() {
            self.bound = None;
            self.trained_forward = false;
        }
        r?;
        self.last_outputs()
    }

    /// The model's outputs as the last forward (a training step's, or [`Self::forward_outputs`])
    /// left them, in the plan's order: what the metrics of a step over several outputs read.
    pub fn last_outputs(&self) -> Result<Vec<ArrayViewD<'_, f32>>, TrainError> {
        self.plan
            .outputs
            .iter()
            .map(|&o| {
                self.values
                    .get(o as usize)
                    .and_then(Option::as_ref)
                    .map(|a| a.view())
                    .ok_or_else(|| internal("an output has no buffer"))
            })
            .collect()
    }

    /// Forward in training semantics, each output's loss, and backward from all of them: the
    /// parameter gradients of `Σ wᵢ·lossᵢ` are then in [`Self::param_grad`]. Returns the total
    /// and each output's loss; the parameters are not updated.
    pub fn outputs_backward(
        &mut self,
        inputs: &[Input<'_>],
        outputs: &[OutputLoss<'_>],
    ) -> Result<(f32, Vec<f32>), TrainError> {
        let r = self.outputs_backward_inner(inputs, outputs);
        if r.is_err() {
            self.bound = None;
            self.trained_forward = false;
        }
        r
    }

    /// One training step of a model with several outputs (see the module doc).
    pub fn train_step_outputs(
        &mut self,
        inputs: &[Input<'_>],
        outputs: &[OutputLoss<'_>],
        optimizer: &mut Optimizer,
        (lr, clip): (f32, Option<Clip>),
    ) -> Result<OutputsReport, TrainError> {
        let r = self
            .outputs_backward(inputs, outputs)
            .and_then(|(total, losses)| {
                let step = self.steps_done + 1;
                let report = self.finish_step(step, total, optimizer, lr, clip)?;
                Ok(OutputsReport {
                    step: report,
                    losses,
                })
            });
        if r.is_err() {
            self.bound = None;
            self.trained_forward = false;
        }
        r
    }

    fn outputs_backward_inner(
        &mut self,
        inputs: &[Input<'_>],
        outputs: &[OutputLoss<'_>],
    ) -> Result<(f32, Vec<f32>), TrainError> {
        let n = self.plan.outputs.len();
        if outputs.len() != n {
            return Err(TrainError::OutputCount(n));
        }
        self.run_forward(inputs, true)?;
        let mut seeds: Vec<(u32, ArrayD<f32>)> = Vec::with_capacity(n);
        let mut losses = Vec::with_capacity(n);
        let mut total = 0f32;
        for (&out, part) in self.plan.outputs.iter().zip(outputs) {
            let env = Env {
                values: &self.values,
                inputs,
                input_pos: &self.input_pos,
            };
            let from_probabilities = matches!(
                part.loss,
                Loss::CategoricalCrossentropy { from_logits: false }
                    | Loss::SparseCategoricalCrossentropy { from_logits: false }
            );
            let logits = from_probabilities
                .then(|| self.softmax_logits(out))
                .flatten();
            let (value, seed, mut grad) = if let Some(z) = logits {
                let r = softmax_cross_entropy(&env.f32(z)?, &part.targets)?;
                (r.loss, z, r.grad)
            } else {
                let r = part.loss.evaluate(&env.f32(out)?, &part.targets)?;
                (r.loss, out, r.grad)
            };
            grad.mapv_inplace(|g| g * part.weight);
            total += part.weight * value;
            losses.push(value);
            seeds.push((seed, grad));
        }
        if !total.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step: self.steps_done + 1,
                loss: total,
                origin: self.non_finite_origin(inputs),
            });
        }
        let views: Vec<(u32, ArrayViewD<'_, f32>)> =
            seeds.iter().map(|(v, g)| (*v, g.view())).collect();
        let steps = self.plan.steps.len();
        self.run_backward_seeds(inputs, &views, steps)?;
        Ok((total, losses))
    }

    /// The logits of output `out` when a softmax step computes it from a value that is not a
    /// model input, and no other step reads the probabilities: backward then starts at the
    /// logits and never visits the softmax step, whose output gradient stays unwritten.
    fn softmax_logits(&self, out: u32) -> Option<u32> {
        let step = self.plan.steps.iter().find(|s| s.output == out)?;
        let input = *step.inputs.first()?;
        let is_softmax = matches!(step.op, Op::Activation(Activation::Softmax));
        let read_elsewhere = self.plan.steps.iter().any(|s| s.inputs.contains(&out));
        let from_input = self.input_pos.get(input as usize)?.is_some();
        (is_softmax && !read_elsewhere && !from_input).then_some(input)
    }
}
