//! Everything a training step does after backward: the NaN/Inf guard on gradients and
//! parameters, clipping, the optimizer update and the batch norm moving-average update.
//!
//! Input: the trainer with its gradients computed. Output: updated parameters and moving
//! statistics, or an error naming the step (1-based) and the layer. Invariants: nothing is
//! updated when a gradient is not finite; an update that overflows with finite gradients is
//! reported after it is applied.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};

use super::context::{self, StepState};
use super::error::{internal, layer_of, NonFiniteOrigin, TrainError};
use super::input::Input;
use super::{Clip, StepReport, Trainer};
use crate::ir::Op;
use crate::runtime::clip::{clip_by_global_norm, clip_by_value, first_non_finite, global_norm};
use crate::runtime::kernels::batch_norm::batch_norm_update_moving;
use crate::runtime::optim::Optimizer;

impl Trainer {
    /// Everything after backward: guard, clipping, the optimizer, moving statistics.
    pub(super) fn finish_step(
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
    pub(super) fn non_finite_origin(&self, inputs: &[Input<'_>]) -> Option<NonFiniteOrigin> {
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
