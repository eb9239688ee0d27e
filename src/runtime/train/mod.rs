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
//! Fused dense + mse: when the plan is one linear dense step from an f32 model input to the
//! output, the loss is mse and input gradients are not asked for (the linear regression of
//! `specs/linear_regression.model`), `kernels::dense_mse` computes the predictions (into the
//! output's buffer), the loss and the kernel and bias gradients in one pass over the input,
//! instead of a forward that reads it, the loss, and a backward that reads it again. The
//! numbers are the unfused ones up to f32 summation order (fixed, so still deterministic).
//! The gradients land in the parameters' slots only once the loss is known to be finite, as
//! with backward. A batch the kernel cannot take (a strided input, targets of another shape or
//! kind, an empty batch) runs unfused, which reports the problem as usual.
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
mod error;
pub(crate) mod forward;
pub(crate) mod fused;
mod input;
mod params;
mod resume;
mod slot;
#[cfg(test)]
mod tests;

pub use error::{NonFiniteOrigin, TrainError};
pub use input::Input;
pub use params::ParamStore;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::ir::{Activation, DType, Op, ParamId};
use crate::passes::Mode;
use crate::plan::ExecutionPlan;
use crate::runtime::clip::{clip_by_global_norm, clip_by_value, first_non_finite, global_norm};
use crate::runtime::kernels::batch_norm::{batch_norm_update_moving, BatchNormStats};
use crate::runtime::kernels::conv_sliced::SlicedConv;
use crate::runtime::kernels::dense_mse::{dense_mse_step, DenseMse, DenseMseOut};
use crate::runtime::kernels::rnn::SlicedRnn;
use crate::runtime::loss::{softmax_cross_entropy, Loss, Targets};
use crate::runtime::optim::Optimizer;

use backward::{backward_step, Grads};
use context::{Env, StepState};
use error::{internal, layer_of};
use forward::{forward_step, Semantics};
use input::Bindings;
use params::derive_seed;
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

/// The parameters of a fused dense + mse step, and its loss.
struct DenseMseStep {
    loss: f32,
    kernel: ParamId,
    bias: Option<ParamId>,
}

impl Trainer {
    /// A trainer for `plan` (compiled with `Mode::Train`, one output) starting from `params`;
    /// `seed` drives the dropout masks.
    pub fn new(plan: ExecutionPlan, params: ParamStore, seed: u64) -> Result<Self, TrainError> {
        if plan.mode != Mode::Train {
            return Err(TrainError::NotATrainingPlan);
        }
        let output = match plan.outputs.as_slice() {
            [o] => *o,
            outs => return Err(TrainError::OutputCount(outs.len())),
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
        let relu_in_pool = relu_through_pool(&plan);
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
            if out.fact.dtype != DType::F32 || input_pos[step.output as usize].is_some() {
                return Err(ctx.unsupported("steps producing integer values"));
            }
            if step.inputs.iter().any(|&v| v as usize >= n_values) {
                return Err(internal(format!(
                    "step `{}` reads a missing value",
                    step.name
                )));
            }
            if let Op::Conv2d { activation, .. } | Op::Dense { activation, .. } = step.op {
                if !fused::supported(activation) {
                    return Err(ctx.unsupported(format!("fused {} activation", activation.name())));
                }
            }
            let relu_in_pool = relu_in_pool.get(i).copied().unwrap_or(false);
            state.push(match step.op {
                Op::Conv2d { .. } => StepState::Conv {
                    workspace: SlicedConv::new(),
                    relu_in_pool,
                },
                Op::MaxPool2d { .. } | Op::AvgPool2d { .. } => StepState::Pool {
                    relu_input: relu_in_pool,
                },
                Op::Rnn { .. } => StepState::Rnn(SlicedRnn::new()),
                Op::BatchNorm { .. } => StepState::BatchNorm(BatchNormStats::default()),
                Op::Dropout { .. } => StepState::Dropout {
                    mask: ArrayD::zeros(IxDyn(&[0])),
                    active: false,
                },
                _ => StepState::Stateless,
            });
        }
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

    /// Sizes every buffer for this batch's shapes (nothing happens when they are unchanged).
    fn prepare(&mut self, inputs: &[Input<'_>]) -> Result<(), TrainError> {
        let facts: Vec<(&str, &crate::ir::Fact)> = self
            .plan
            .inputs
            .iter()
            .filter_map(|&v| self.plan.values.get(v as usize))
            .map(|v| (v.name.as_str(), &v.fact))
            .collect();
        let bindings = input::bind(&facts, inputs)?;
        if self.bound.as_ref() == Some(&bindings) {
            return Ok(());
        }
        self.bound = None;
        for (i, v) in self.plan.values.iter().enumerate() {
            if v.fact.dtype != DType::F32 {
                continue;
            }
            let shape = input::concrete(&v.name, &v.fact, &bindings)?;
            // A new batch size reuses the buffers' memory (an epoch's last batch is shorter).
            self.value_grads[i] = std::mem::take(&mut self.value_grads[i]).resized(&shape);
            if self.input_pos[i].is_none() {
                self.values[i] = Some(slot::zeroed_reusing(self.values[i].take(), &shape));
            }
        }
        for (step, st) in self.plan.steps.iter().zip(&mut self.state) {
            if let StepState::Dropout { mask, .. } = st {
                let shape = self.values[step.output as usize]
                    .as_ref()
                    .map(|a| a.shape().to_vec())
                    .ok_or_else(|| internal("dropout output has no buffer"))?;
                *mask = slot::zeroed_reusing(Some(std::mem::take(mask)), &shape);
            }
        }
        self.bound = Some(bindings);
        Ok(())
    }

    /// Runs the plan forward; `training` selects batch statistics and dropout.
    fn run_forward(&mut self, inputs: &[Input<'_>], training: bool) -> Result<(), TrainError> {
        self.prepare(inputs)?;
        self.trained_forward = false;
        let Self {
            plan,
            params,
            values,
            state,
            input_pos,
            seed,
            steps_done,
            ..
        } = self;
        for (i, (step, st)) in plan.steps.iter().zip(state.iter_mut()).enumerate() {
            let o = step.output as usize;
            let mut out = values
                .get_mut(o)
                .and_then(Option::take)
                .ok_or_else(|| internal(format!("no buffer for `{}`", step.name)))?;
            let mut rng;
            let semantics = if training {
                rng = ChaCha8Rng::seed_from_u64(derive_seed(*seed, 1 + *steps_done, i as u64));
                Semantics::Train(&mut rng)
            } else {
                Semantics::Infer
            };
            let env = Env {
                values,
                inputs,
                input_pos,
            };
            let r = forward_step(step, &env, params, st, semantics, &mut out.view_mut());
            values[o] = Some(out);
            r?;
        }
        self.trained_forward = training;
        Ok(())
    }

    /// Runs backward from `seed_grad` on value `seed`, over the steps before `stop`.
    fn run_backward(
        &mut self,
        inputs: &[Input<'_>],
        seed: u32,
        seed_grad: &ArrayViewD<'_, f32>,
        stop: usize,
    ) -> Result<(), TrainError> {
        if !self.trained_forward {
            return Err(internal("backward needs a training-mode forward first"));
        }
        self.value_grads.iter_mut().for_each(GradSlot::reset);
        self.param_grads.iter_mut().for_each(GradSlot::reset);
        {
            let slot = self
                .value_grads
                .get_mut(seed as usize)
                .ok_or_else(|| internal("loss seed out of range"))?;
            let mut t = slot.target()?;
            if t.shape() != seed_grad.shape() {
                return Err(internal(format!(
                    "loss gradient of shape {:?} for a value of shape {:?}",
                    seed_grad.shape(),
                    t.shape()
                )));
            }
            t.assign(seed_grad);
            slot.commit();
        }
        let Self {
            plan,
            params,
            values,
            state,
            input_pos,
            needs,
            value_grads,
            param_grads,
            trainable,
            ..
        } = self;
        let env = Env {
            values,
            inputs,
            input_pos,
        };
        for i in (0..stop.min(plan.steps.len())).rev() {
            let (Some(step), Some(st)) = (plan.steps.get(i), state.get_mut(i)) else {
                break;
            };
            let o = step.output as usize;
            if !value_grads.get(o).is_some_and(GradSlot::is_written) {
                continue;
            }
            let mut dy = value_grads[o]
                .take()
                .ok_or_else(|| internal("gradient buffer missing"))?;
            let y = env.f32(step.output)?;
            let mut grads = Grads {
                values: value_grads,
                params: param_grads,
                needs,
            };
            let r = backward_step(step, &env, params, st, &y, &mut dy.view_mut(), &mut grads);
            value_grads[o].put(dy);
            r?;
        }
        zero_unreached(param_grads, trainable);
        Ok(())
    }

    /// The fused dense + mse forward (see the module doc) when the plan, loss and batch fit
    /// it: predictions into the output's buffer, gradients into `dense_mse_grads`. `None`
    /// (nothing computed) when they do not.
    fn dense_mse_forward(
        &mut self,
        inputs: &[Input<'_>],
        targets: &Targets<'_>,
        loss: Loss,
    ) -> Result<Option<DenseMseStep>, TrainError> {
        let (Targets::Dense(t), Loss::MeanSquaredError, true) =
            (targets, loss, self.fuse_dense_mse)
        else {
            return Ok(None);
        };
        let [step] = self.plan.steps.as_slice() else {
            return Ok(None);
        };
        let (
            Op::Dense {
                kernel,
                bias,
                activation: Activation::Linear,
                ..
            },
            &[v],
        ) = (&step.op, step.inputs.as_slice())
        else {
            return Ok(None);
        };
        let (kernel, bias, v, o) = (*kernel, *bias, v as usize, step.output as usize);
        let plain_input = self.input_pos.get(v).copied().flatten().is_some()
            && !self.needs.get(v).copied().unwrap_or(true);
        if step.output != self.output || !plain_input {
            return Ok(None);
        }
        self.prepare(inputs)?;
        self.trained_forward = false;
        let Self {
            plan,
            params,
            values,
            input_pos,
            dense_mse_grads,
            ..
        } = self;
        let x = input_pos
            .get(v)
            .copied()
            .flatten()
            .and_then(|k| inputs.get(k));
        let Some(Input::F32(x)) = x else {
            return Ok(None);
        };
        let step = plan
            .steps
            .first()
            .ok_or_else(|| internal("the dense step is gone"))?;
        let ctx = context::Ctx::of(step);
        let kv = ctx.rank::<f32, ndarray::Ix2>(forward::param(&ctx, params, kernel)?)?;
        let bv = match bias {
            Some(b) => Some(ctx.rank::<f32, ndarray::Ix1>(forward::param(&ctx, params, b)?)?),
            None => None,
        };
        let (features, units) = kv.dim();
        let Some(out) = values.get_mut(o).and_then(Option::as_mut) else {
            return Err(internal("the output has no buffer"));
        };
        // Row-major rows of `features` and targets shaped like the output; anything else runs
        // unfused (which reports what is wrong with it).
        let rows = out.len() / units.max(1);
        let fits = x.shape().last() == Some(&features)
            && x.len() == rows * features
            && out.shape().last() == Some(&units)
            && t.shape() == out.shape()
            && !out.is_empty()
            && x.is_standard_layout()
            && t.is_standard_layout();
        let (Some(xs), Some(ts), Some(ps), true) =
            (x.as_slice(), t.as_slice(), out.as_slice_mut(), fits)
        else {
            return Ok(None);
        };
        let mat = |data| ndarray::ArrayView2::from_shape((rows, features), data);
        let shaped = |e: ndarray::ShapeError| ctx.internal(e);
        dense_mse_grads.clear();
        dense_mse_grads.resize(features * units + units, 0.0);
        let (dk, db) = dense_mse_grads.split_at_mut(features * units);
        let input = DenseMse {
            x: mat(xs).map_err(shaped)?,
            kernel: kv,
            bias: bv,
            targets: ndarray::ArrayView2::from_shape((rows, units), ts).map_err(shaped)?,
        };
        let grads = DenseMseOut {
            pred: ndarray::ArrayViewMut2::from_shape((rows, units), ps).map_err(shaped)?,
            dkernel: ndarray::ArrayViewMut2::from_shape((features, units), dk).map_err(shaped)?,
            dbias: bias.map(|_| ndarray::ArrayViewMut1::from(db)),
        };
        let loss = dense_mse_step(&input, grads).map_err(|e| ctx.kernel(e))?;
        self.trained_forward = true;
        Ok(Some(DenseMseStep { loss, kernel, bias }))
    }

    /// Puts the fused dense + mse gradients into the parameters' slots, where backward would.
    fn commit_dense_mse(&mut self, fused: &DenseMseStep) -> Result<(), TrainError> {
        self.value_grads.iter_mut().for_each(GradSlot::reset);
        self.param_grads.iter_mut().for_each(GradSlot::reset);
        let len = self
            .plan
            .params
            .get(fused.kernel.index())
            .map_or(0, |p| p.shape.iter().product());
        let (dk, db) = self
            .dense_mse_grads
            .split_at_checked(len)
            .ok_or_else(|| internal("fused dense + mse gradients missing"))?;
        let parts = [Some((fused.kernel, dk)), fused.bias.map(|b| (b, db))];
        for (p, g) in parts.into_iter().flatten() {
            let slot = self
                .param_grads
                .get_mut(p.index())
                .ok_or_else(|| internal("no gradient slot for a dense parameter"))?;
            match slot.target()?.as_slice_mut() {
                Some(d) if d.len() == g.len() => d.copy_from_slice(g),
                _ => return Err(internal("fused dense + mse gradient of another size")),
            }
            slot.commit();
        }
        zero_unreached(&mut self.param_grads, &self.trainable);
        Ok(())
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
        let r = self.train_step_inner(inputs, targets, loss, optimizer, lr, clip);
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
        loss: Loss,
        optimizer: &mut Optimizer,
        lr: f32,
        clip: Option<Clip>,
    ) -> Result<StepReport, TrainError> {
        let step = self.steps_done + 1;
        if let Some(fused) = self.dense_mse_forward(inputs, targets, loss)? {
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
            let r = softmax_cross_entropy(&env.f32(logits)?, targets)?;
            (r.loss, logits, r.grad, index)
        } else {
            let r = loss.evaluate(&self.output_view()?, targets)?;
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

    /// Everything after backward: guard, clipping, the optimizer, moving statistics.
    fn finish_step(
        &mut self,
        step: u64,
        value: f32,
        optimizer: &mut Optimizer,
        lr: f32,
        clip: Option<Clip>,
    ) -> Result<StepReport, TrainError> {
        let grad_norm = self.check_gradients(step)?;
        self.clip_gradients(clip)?;
        self.apply_update(optimizer, lr)?;
        self.update_moving_statistics()?;
        self.steps_done = step;
        self.check_parameters(step)?;
        Ok(StepReport {
            loss: value,
            grad_norm,
        })
    }

    /// Where the forward pass first went non-finite: an input, or the first step (in plan
    /// order) whose output holds a NaN or infinity. `None` when every value was finite, so the
    /// loss itself overflowed (a log of 0, say).
    fn non_finite_origin(&self, inputs: &[Input<'_>]) -> Option<NonFiniteOrigin> {
        let finite = |a: &ArrayViewD<'_, f32>| a.iter().all(|x| x.is_finite());
        let input_names = self.plan.inputs.iter().map(|&v| {
            self.plan
                .values
                .get(v as usize)
                .map_or_else(String::new, |p| p.name.clone())
        });
        for (input, name) in inputs.iter().zip(input_names) {
            if matches!(input, Input::F32(a) if !finite(a)) {
                return Some(NonFiniteOrigin::Input(name));
            }
        }
        self.plan.steps.iter().find_map(|s| {
            let out = self.values.get(s.output as usize)?.as_ref()?;
            (!finite(&out.view())).then(|| NonFiniteOrigin::Step(s.name.clone()))
        })
    }

    /// The trainable parameters' gradients, in plan order.
    fn trainable_grads(&self) -> Result<Vec<ArrayViewD<'_, f32>>, TrainError> {
        self.param_grads
            .iter()
            .zip(&self.trainable)
            .filter(|(_, &t)| t)
            .map(|(s, _)| s.view().ok_or_else(|| internal("gradient not computed")))
            .collect()
    }

    /// The name of the `k`-th trainable parameter.
    fn trainable_name(&self, k: usize) -> String {
        self.plan
            .params
            .iter()
            .zip(&self.trainable)
            .filter(|(_, &t)| t)
            .nth(k)
            .map_or_else(String::new, |(p, _)| p.name.clone())
    }

    /// Global norm of the gradients; an error naming the first non-finite one.
    fn check_gradients(&self, step: u64) -> Result<f64, TrainError> {
        let grads = self.trainable_grads()?;
        if let Some((k, element)) = first_non_finite(&grads) {
            let param = self.trainable_name(k);
            return Err(TrainError::NonFiniteGradient {
                step,
                layer: layer_of(&param),
                param,
                element,
            });
        }
        Ok(global_norm(&grads))
    }

    fn clip_gradients(&mut self, clip: Option<Clip>) -> Result<(), TrainError> {
        let Some(clip) = clip else { return Ok(()) };
        let mut grads: Vec<ArrayViewMutD<'_, f32>> = self
            .param_grads
            .iter_mut()
            .zip(&self.trainable)
            .filter(|(_, &t)| t)
            .filter_map(|(s, _)| s.view_mut())
            .collect();
        match clip {
            Clip::GlobalNorm(max) => {
                clip_by_global_norm(&mut grads, max)?;
            }
            Clip::Value(limit) => clip_by_value(&mut grads, limit)?,
        }
        Ok(())
    }

    fn apply_update(&mut self, optimizer: &mut Optimizer, lr: f32) -> Result<(), TrainError> {
        let grads: Vec<ArrayViewD<'_, f32>> = self
            .param_grads
            .iter()
            .zip(&self.trainable)
            .filter(|(_, &t)| t)
            .filter_map(|(s, _)| s.view())
            .collect();
        let mut params: Vec<ArrayViewMutD<'_, f32>> = self
            .params
            .tensors_mut()
            .iter_mut()
            .zip(&self.trainable)
            .filter(|(_, &t)| t)
            .map(|(p, _)| p.view_mut())
            .collect();
        optimizer.step(&mut params, &grads, lr)?;
        Ok(())
    }

    /// Keras' moving-average update of every batch norm, from the last training forward.
    fn update_moving_statistics(&mut self) -> Result<(), TrainError> {
        let tensors = self.params.tensors_mut();
        for (step, st) in self.plan.steps.iter().zip(&self.state) {
            let (
                Op::BatchNorm {
                    mean,
                    variance,
                    momentum,
                    ..
                },
                StepState::BatchNorm(stats),
            ) = (&step.op, st)
            else {
                continue;
            };
            let (m, v) = two_mut(tensors, mean.index(), variance.index())
                .ok_or_else(|| internal("batch norm statistics parameters overlap"))?;
            batch_norm_update_moving(stats, *momentum, m, v)
                .map_err(|e| context::Ctx::of(step).kernel(e))?;
        }
        Ok(())
    }

    fn check_parameters(&self, step: u64) -> Result<(), TrainError> {
        for ((p, t), &tr) in self
            .plan
            .params
            .iter()
            .zip(self.params.tensors())
            .zip(&self.trainable)
        {
            if tr && t.iter().any(|v| !v.is_finite()) {
                return Err(TrainError::NonFiniteParam {
                    step,
                    layer: layer_of(&p.name),
                    param: p.name.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Per step: whether it is one of a pair (a conv2d with a fused relu, and the max pool that is
/// the only reader of its output) whose relu derivative the pool's backward applies while it
/// routes the gradient (`PoolBackward::relu_input`): one pass less over the conv's output and
/// its gradient, the largest tensors of a CNN. The bits are those of the separate derivative.
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
        let (Op::MaxPool2d { .. }, [v]) = (&step.op, step.inputs.as_slice()) else {
            continue;
        };
        let only_reader = readers.get(*v as usize) == Some(&1) && !plan.outputs.contains(v);
        let Some(j) = producer(*v).filter(|_| only_reader) else {
            continue;
        };
        if let Op::Conv2d {
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
fn gradient_needs(
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

/// Zero gradients for the trainable parameters no step reached.
fn zero_unreached(param_grads: &mut [GradSlot], trainable: &[bool]) {
    for (slot, &t) in param_grads.iter_mut().zip(trainable) {
        if t && !slot.is_written() {
            slot.fill_zero();
        }
    }
}

/// Two distinct elements of a slice, mutably, as 1-D views.
fn two_mut(
    s: &mut [ArrayD<f32>],
    i: usize,
    j: usize,
) -> Option<(
    ndarray::ArrayViewMut1<'_, f32>,
    ndarray::ArrayViewMut1<'_, f32>,
)> {
    let (a, b) = match i.cmp(&j) {
        std::cmp::Ordering::Less => {
            let (lo, hi) = s.split_at_mut(j);
            (lo.get_mut(i)?, hi.first_mut()?)
        }
        std::cmp::Ordering::Greater => {
            let (lo, hi) = s.split_at_mut(i);
            let (b, a) = (lo.get_mut(j)?, hi.first_mut()?);
            (a, b)
        }
        std::cmp::Ordering::Equal => return None,
    };
    let a = a.view_mut().into_dimensionality().ok()?;
    let b = b.view_mut().into_dimensionality().ok()?;
    Some((a, b))
}
