//! Per-parameter optimizer state: one f32 tensor per parameter index, created as zeros on the
//! first step and checked against the parameters' shapes on every later step.

use ndarray::{ArrayD, ArrayViewMutD};
use serde::{Deserialize, Serialize};

use super::OptimError;

/// One state tensor per parameter (e.g. all momentum buffers). Empty until the first step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slots(Vec<ArrayD<f32>>);

impl Slots {
    /// Makes the slots fit `params`: zeros on first use, otherwise an error unless the count and
    /// every shape already match. `name` names the slot in errors.
    pub fn prepare(
        &mut self,
        name: &'static str,
        params: &[ArrayViewMutD<f32>],
    ) -> Result<(), OptimError> {
        if self.0.is_empty() {
            self.0 = params.iter().map(|p| ArrayD::zeros(p.raw_dim())).collect();
            return Ok(());
        }
        if self.0.len() != params.len() {
            return Err(OptimError::StateCount {
                state: self.0.len(),
                params: params.len(),
            });
        }
        for (index, (s, p)) in self.0.iter().zip(params).enumerate() {
            if s.shape() != p.shape() {
                return Err(OptimError::StateShape {
                    slot: name,
                    index,
                    state: s.shape().to_vec(),
                    param: p.shape().to_vec(),
                });
            }
        }
        Ok(())
    }

    /// Takes the state tensors out, leaving the slots empty (as before the first step).
    pub fn take(&mut self) -> Vec<ArrayD<f32>> {
        std::mem::take(&mut self.0)
    }

    /// Puts state tensors back (a checkpoint's); the next step checks them against the
    /// parameters' count and shapes, as it checks any restored state.
    pub fn restore(&mut self, tensors: Vec<ArrayD<f32>>) {
        self.0 = tensors;
    }

    /// The state tensors, one per parameter, in parameter order.
    pub fn tensors_mut(&mut self) -> &mut [ArrayD<f32>] {
        &mut self.0
    }
}
