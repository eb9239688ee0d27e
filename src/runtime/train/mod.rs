//! The training engine: forward with kept activations, backward for every op, loss, clipping,
//! a NaN/Inf guard and the optimizer step, over an [`ExecutionPlan`] compiled with
//! `Mode::Train`.
//!
//! Input: a training plan, its parameters ([`ParamStore`]), a seed, and batches ([`Input`]s
//! with [`Targets`]). Output: updated parameters and a [`StepReport`] per step; [`Trainer::evaluate`]
//! gives outputs in inference semantics (batch norm with its moving statistics, no dropout).
//!
//! How a step runs ([`Trainer::train_step`]): forward in training semantics, keeping every
//! value (one buffer per plan value, allocated when the batch's shape first appears and reused
//! while it stays; conv workspaces, recurrent caches, batch statistics and dropout masks live
//! per step and are reused too); the loss and its gradient; backward in reverse plan order,
//! accumulating into per-value and per-parameter gradient buffers (see `slot.rs`); then the
//! guard, clipping, the optimizer, and the batch norm moving-average update (Keras:
//! `moving = moving·momentum + batch·(1 − momentum)`, momentum from the op).
//!
//! Fused softmax + cross-entropy: when the plan's last step is a softmax producing the output
//! and the loss is (sparse) categorical cross-entropy from probabilities, the loss is computed
//! by `loss::softmax_cross_entropy` on the softmax's *input* (the logits) and its gradient
//! `softmax − onehot` seeds backward there, skipping the softmax step. This is stable where
//! `ln(softmax)` would underflow; Keras computes the same value up to its `1e-7` clipping of
//! the probabilities (the two agree to that clip whenever no probability falls below it).
//!
//! Several outputs (`outputs.rs`): one loss per output, the total `Σ wᵢ·lossᵢ`, each output's
//! gradient `wᵢ·∂lossᵢ` seeding backward at once ([`Trainer::train_step_outputs`]).
//!
//! Fused dense + mse: a one-step linear regression under mse trains in one pass over the
//! input (`dense_mse.rs`, a fast path of the dense family).
//!
//! Where things are: `run.rs` the forward and backward passes over the plan (each step's
//! forward and backward are its op family's, `runtime::ops`), `update.rs` the guard, clipping
//! and optimizer, `setup.rs` what `Trainer::new` derives from the plan once.
//!
//! Guard: a non-finite loss or gradient stops the step with an error naming the step (1-based)
//! and the layer, before the optimizer or the moving statistics are touched. An update that
//! overflows with finite gradients (a huge learning rate) is reported after it is applied.
//!
//! Determinism: dropout masks come from ChaCha8 seeded with `(seed, step, plan step index)`;
//! kernels are deterministic for a fixed GEMM thread count; so the same plan, seed, data and
//! thread count give a bit-identical loss curve. Per-step allocations that remain are outside
//! this module: the loss's gradient array and the kernels' batch-statistics vectors.

pub(crate) mod backward;
pub(crate) mod context;
mod dense_mse;
mod error;
pub(crate) mod forward;
pub(crate) mod fused;
mod input;
mod outputs;
mod params;
mod resume;
mod run;
mod setup;
mod slot;
#[cfg(test)]
mod tests;
mod update;

pub use error::{NonFiniteOrigin, TrainError};
pub use input::Input;
pub use outputs::{OutputLoss, OutputsReport};
pub use params::ParamStore;
#[cfg(test)]
pub(crate) use setup::relu_through_pool;
pub(crate) use setup::ValueLinks;

use ndarray::{ArrayD, ArrayViewD};

use crate::ir::{Activation, Op};
use crate::passes::Mode;
use crate::plan::ExecutionPlan;
use crate::runtime::loss::{softmax_cross_entropy, weighted_by_sample, Loss, LossOutput, Targets};
use crate::runtime::optim::Optimizer;

use context::{Env, StepState};
use error::internal;
use input::Bindings;
use setup::gradient_needs;
use slot::GradSlot;

/// Why the trainer refuses an [`Op::EmbeddedRnn`]: `fold-embedding-projection` runs on
/// inference plans only, so a training plan holding one is not modelc's.
pub(crate) const INFERENCE_ONLY: &str =
    "a recurrent layer over token ids is an inference-only rewrite, not in training plans";

/// Gradient clipping applied between backward and the optimizer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clip {
    /// Scale all gradients so that their global L2 norm is at most this.
    GlobalNorm(f32),
    /// Clamp every gradient element into `[-v, v]`.
    Value(f32),
}

/// What one training step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// The batch's mean loss (before the update).
    pub loss: f32,
    /// The global L2 norm of the trainable parameters' gradients, before clipping.
    pub grad_norm: f64,
}

/// Trains one model: owns its plan, parameters and every buffer a step needs.
#[derive(Debug)]
pub struct Trainer {
    plan: ExecutionPlan,
    params: ParamStore,
    seed: u64,
    steps_done: u64,
    /// The first output: the one the single-loss API trains ([`Self::train_step`] refuses a
    /// plan with several; [`Self::train_step_outputs`] takes one loss per output).
    output: u32,
    /// Per plan value: its position among the graph inputs.
    input_pos: Vec<Option<usize>>,
    /// Per plan value: whether some trainable parameter is upstream of it.
    needs: Vec<bool>,
    trainable: Vec<bool>,
    state: Vec<StepState>,
    values: Vec<Option<ArrayD<f32>>>,
    value_grads: Vec<GradSlot>,
    param_grads: Vec<GradSlot>,
    /// The symbol sizes the buffers are allocated for (`None`: not allocated or invalidated).
    bound: Option<Bindings>,
    /// Whether the last forward ran in training semantics (backward needs that).
    trained_forward: bool,
    /// Whether [`Self::train_step`] may use the fused dense + mse step (tests turn it off).
    fuse_dense_mse: bool,
    /// The fused dense + mse step's kernel gradient then bias gradient, held until the loss
    /// is known to be finite.
    dense_mse_grads: Vec<f32>,
}

impl Trainer {
    /// A trainer for `plan` (compiled with `Mode::Train`) starting from `params`;
    /// `seed` drives the dropout masks.
    pub fn new(plan: ExecutionPlan, params: ParamStore, seed: u64) -> Result<Self, TrainError> {
        if plan.mode != Mode::Train {
            return Err(TrainError::NotATrainingPlan);
        }
        let output = match plan.outputs.first() {
            Some(o) => *o,
            None => return Err(TrainError::OutputCount(0)),
        };
        let n_values = plan.values.len();
        if params.tensors().len() != plan.params.len()
            || plan
                .params
                .iter()
                .zip(params.tensors())
                .any(|(p, t)| t.shape() != p.shape.as_slice())
        {
            return Err(internal("the parameter store does not match the plan"));
        }
        let mut input_pos = vec![None; n_values];
        for (i, &v) in plan.inputs.iter().enumerate() {
            *input_pos
                .get_mut(v as usize)
                .ok_or_else(|| internal("input index out of range"))? = Some(i);
        }
        let trainable: Vec<bool> = plan.params.iter().map(|p| p.trainable).collect();
        let needs = gradient_needs(&plan, &trainable, &input_pos, false);
        let mut state = setup::step_states(&plan, &input_pos)?;
        crate::runtime::ops::recurrent_fold::fold_embeddings(&plan, &mut state);
        let param_grads = plan
            .params
            .iter()
            .map(|p| GradSlot::zeros(&p.shape))
            .collect();
        Ok(Self {
            values: vec![None; n_values],
            value_grads: vec![GradSlot::default(); n_values],
            plan,
            params,
            seed,
            steps_done: 0,
            output,
            input_pos,
            needs,
            trainable,
            state,
            param_grads,
            bound: None,
            trained_forward: false,
            fuse_dense_mse: true,
            dense_mse_grads: Vec::new(),
        })
    }

    /// The plan being trained.
    pub fn plan(&self) -> &ExecutionPlan {
        &self.plan
    }

    /// The current parameters.
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// Gives the parameters back.
    pub fn into_params(self) -> ParamStore {
        self.params
    }

    /// Training steps completed so far.
    pub fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// The gradient of parameter `index` from the last backward pass.
    pub fn param_grad(&self, index: usize) -> Option<ArrayViewD<'_, f32>> {
        self.param_grads.get(index).and_then(GradSlot::view)
    }

    /// Also computes the gradients of the f32 model inputs in [`Self::backward`] (off by
    /// default: training does not need them, and skipping them saves a GEMM in the first
    /// dense layer).
    #[must_use]
    pub fn with_input_gradients(mut self) -> Self {
        self.needs = gradient_needs(&self.plan, &self.trainable, &self.input_pos, true);
        self
    }

    /// Always runs the unfused forward, loss and backward (to compare the fused step with).
    #[cfg(test)]
    pub(crate) fn without_dense_mse_fusion(mut self) -> Self {
        self.fuse_dense_mse = false;
        self
    }

    /// The gradient of model input `k` from the last backward pass (see
    /// [`Self::with_input_gradients`]).
    pub fn input_grad(&self, k: usize) -> Option<ArrayViewD<'_, f32>> {
        let v = *self.plan.inputs.get(k)? as usize;
        self.value_grads.get(v).and_then(GradSlot::view)
    }

    /// Forward over a batch; the returned output stays valid until the next call.
    ///
    /// `training` selects training semantics (batch statistics, dropout with the mask stream of
    /// the current step); the moving statistics are not updated here (see [`Self::train_step`]).
    pub fn forward(
        &mut self,
        inputs: &[Input<'_>],
        training: bool,
    ) -> Result<ArrayViewD<'_, f32>, TrainError> {
        let r = self.run_forward(inputs, training);
        self.settle(r)?;
        self.output_view()
    }

    /// Backward from a gradient of the model output, after [`Self::forward`] with
    /// `training = true` on the same `inputs`; parameter gradients are then in
    /// [`Self::param_grad`].
    pub fn backward(
        &mut self,
        inputs: &[Input<'_>],
        output_grad: &ArrayViewD<'_, f32>,
    ) -> Result<(), TrainError> {
        let stop = self.plan.steps.len();
        let r = self.run_backward(inputs, self.output, output_grad, stop);
        self.settle(r)
    }

    /// The model's outputs in inference semantics (moving statistics, no dropout).
    pub fn evaluate(&mut self, inputs: &[Input<'_>]) -> Result<ArrayViewD<'_, f32>, TrainError> {
        self.forward(inputs, false)
    }

    /// Invalidates the buffers after an error (a gradient slot may have been taken out).
    fn settle(&mut self, r: Result<(), TrainError>) -> Result<(), TrainError> {
        if r.is_err() {
            self.bound = None;
            self.trained_forward = false;
        }
        r
    }

    fn output_view(&self) -> Result<ArrayViewD<'_, f32>, TrainError> {
        self.values
            .get(self.output as usize)
            .and_then(Option::as_ref)
            .map(|a| a.view())
            .ok_or_else(|| internal("the output has no buffer"))
    }

    /// The index of the last step when it is a softmax producing the model output.
    fn final_softmax(&self) -> Option<(usize, u32)> {
        let (i, last) = self.plan.steps.iter().enumerate().next_back()?;
        let is_softmax = matches!(last.op, Op::Activation(Activation::Softmax));
        let input = *last.inputs.first()?;
        (is_softmax && last.output == self.output && self.input_pos[input as usize].is_none())
            .then_some((i, input))
    }

    /// One training step: forward, loss, backward, guard, clipping, optimizer update, moving
    /// statistics. See the module doc.
    pub fn train_step(
        &mut self,
        inputs: &[Input<'_>],
        targets: &Targets<'_>,
        loss: Loss,
        optimizer: &mut Optimizer,
        lr: f32,
        clip: Option<Clip>,
    ) -> Result<StepReport, TrainError> {
        self.train_step_weighted(inputs, targets, loss, optimizer, (lr, clip), None)
    }

    /// [`Self::train_step`] with one loss weight per sample (`class_weight`): the loss is
    /// `Σ w_i l_i / n` ([`weighted_by_sample`]), and the gradients follow.
    pub fn train_step_weighted(
        &mut self,
        inputs: &[Input<'_>],
        targets: &Targets<'_>,
        loss: Loss,
        optimizer: &mut Optimizer,
        (lr, clip): (f32, Option<Clip>),
        weights: Option<&[f32]>,
    ) -> Result<StepReport, TrainError> {
        let r = self.train_step_inner(inputs, targets, (loss, weights), optimizer, lr, clip);
        match r {
            Ok(report) => Ok(report),
            Err(e) => {
                self.bound = None;
                self.trained_forward = false;
                Err(e)
            }
        }
    }

    fn train_step_inner(
        &mut self,
        inputs: &[Input<'_>],
        targets: &Targets<'_>,
        (loss, weights): (Loss, Option<&[f32]>),
        optimizer: &mut Optimizer,
        lr: f32,
        clip: Option<Clip>,
    ) -> Result<StepReport, TrainError> {
        let step = self.steps_done + 1;
        if self.plan.outputs.len() != 1 {
            return Err(TrainError::OutputCount(self.plan.outputs.len()));
        }
        let fused_mse = match weights {
            None => self.dense_mse_forward(inputs, targets, loss)?,
            Some(_) => None,
        };
        if let Some(fused) = fused_mse {
            if !fused.loss.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    step,
                    loss: fused.loss,
                    origin: self.non_finite_origin(inputs),
                });
            }
            self.commit_dense_mse(&fused)?;
            return self.finish_step(step, fused.loss, optimizer, lr, clip);
        }
        self.run_forward(inputs, true)?;
        let fused = matches!(
            loss,
            Loss::CategoricalCrossentropy { from_logits: false }
                | Loss::SparseCategoricalCrossentropy { from_logits: false }
        )
        .then(|| self.final_softmax())
        .flatten();
        let (value, seed, grad, stop) = if let Some((index, logits)) = fused {
            let env = Env {
                values: &self.values,
                inputs,
                input_pos: &self.input_pos,
            };
            let fused_loss = |y: &ArrayViewD<f32>, t: &Targets| {
                softmax_cross_entropy(y, t).map(|r| LossOutput {
                    loss: r.loss,
                    grad: r.grad,
                })
            };
            let logits_view = env.f32(logits)?;
            let r = match weights {
                Some(w) => weighted_by_sample(&logits_view, targets, w, fused_loss)?,
                None => fused_loss(&logits_view, targets)?,
            };
            (r.loss, logits, r.grad, index)
        } else {
            let output = self.output_view()?;
            let r = match weights {
                Some(w) => weighted_by_sample(&output, targets, w, |y, t| loss.evaluate(y, t))?,
                None => loss.evaluate(&output, targets)?,
            };
            (r.loss, self.output, r.grad, self.plan.steps.len())
        };
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step,
                loss: value,
                origin: self.non_finite_origin(inputs),
            });
        }
        self.run_backward(inputs, seed, &grad.view(), stop)?;
        self.finish_step(step, value, optimizer, lr, clip)
    }
}
