//! The trainer's passes over the plan: sizing the buffers for a batch, the forward over every
//! step (each its family's forward, `runtime::ops`) and the backward in reverse plan order.
//!
//! Input: the trainer's plan, parameters and buffers, and the batch's [`Input`]s. Output: every
//! value (forward) or every gradient slot (backward) filled. Invariants: buffers are sized once
//! per set of batch shapes and reused; a step's output buffer is taken out of the value table
//! while the step writes it and put back whatever the step returned; backward visits a step
//! only when its output's gradient was written, and trainable parameters no step reached get
//! zero gradients.

use ndarray::ArrayViewD;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::backward::{backward_step, Grads};
use super::context::{Env, StepState};
use super::error::{internal, TrainError};
use super::forward::{forward_step, Semantics};
use super::input::{self, Input};
use super::params::derive_seed;
use super::slot::{self, GradSlot};
use super::Trainer;
use crate::ir::DType;

impl Trainer {
    /// Sizes every buffer for this batch's shapes (nothing happens when they are unchanged).
    pub(super) fn prepare(&mut self, inputs: &[Input<'_>]) -> Result<(), TrainError> {
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
    pub(super) fn run_forward(
        &mut self,
        inputs: &[Input<'_>],
        training: bool,
    ) -> Result<(), TrainError> {
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
    pub(super) fn run_backward(
        &mut self,
        inputs: &[Input<'_>],
        seed: u32,
        seed_grad: &ArrayViewD<'_, f32>,
        stop: usize,
    ) -> Result<(), TrainError> {
        self.run_backward_seeds(inputs, &[(seed, seed_grad.view())], stop)
    }

    /// Runs backward from several seeds (each a value and the loss's gradient there; a value
    /// seeded twice receives the sum), over the steps before `stop`: a model with several
    /// outputs seeds each output (or its softmax's logits) with its weighted loss gradient.
    pub(super) fn run_backward_seeds(
        &mut self,
        inputs: &[Input<'_>],
        seeds: &[(u32, ArrayViewD<'_, f32>)],
        stop: usize,
    ) -> Result<(), TrainError> {
        if !self.trained_forward {
            return Err(internal("backward needs a training-mode forward first"));
        }
        self.value_grads.iter_mut().for_each(GradSlot::reset);
        self.param_grads.iter_mut().for_each(GradSlot::reset);
        for (seed, seed_grad) in seeds {
            let slot = self
                .value_grads
                .get_mut(*seed as usize)
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
}

/// Zero gradients for the trainable parameters no step reached.
pub(super) fn zero_unreached(param_grads: &mut [GradSlot], trainable: &[bool]) {
    for (slot, &t) in param_grads.iter_mut().zip(trainable) {
        if t && !slot.is_written() {
            slot.fill_zero();
        }
    }
}
