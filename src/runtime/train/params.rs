//! The model's parameter tensors, in plan parameter order.
//!
//! Input: an [`ExecutionPlan`]'s parameter table and a seed (or tensors read elsewhere, e.g.
//! from a weights file). Output: one `f32` array per parameter, shaped as declared. Invariants:
//! `tensors()[i]` has the shape of `plan.params[i]`; fresh parameters come from
//! `runtime::init` with the parameter's [`Init`] and a per-parameter seed derived from the
//! model seed and the parameter's index (SplitMix64), so the same seed gives the same weights
//! whatever the other parameters are.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::error::TrainError;
use crate::ir::ParamSource;
use crate::plan::ExecutionPlan;
use crate::runtime::init::{initialize, Initializer};

/// SplitMix64's finalizer: a bijective mix of 64 bits.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed derived from `seed` and two indices (deterministic, well mixed).
pub(crate) fn derive_seed(seed: u64, a: u64, b: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ a) ^ b)
}

/// Parameter tensors in plan order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamStore {
    names: Vec<String>,
    tensors: Vec<ArrayD<f32>>,
}

impl ParamStore {
    /// Fresh parameters: parameter `i` is drawn with seed `derive_seed(seed, 0, i)`.
    pub fn init(plan: &ExecutionPlan, seed: u64) -> Result<Self, TrainError> {
        let mut tensors = Vec::with_capacity(plan.params.len());
        for (index, p) in plan.params.iter().enumerate() {
            if matches!(p.source, ParamSource::Derived(_)) {
                return Err(TrainError::Param {
                    name: p.name.clone(),
                    detail: "is derived from other parameters (an inference rewrite); training needs a Mode::Train plan".into(),
                });
            }
            let tensor = initialize(
                Initializer::from(p.init),
                &p.shape,
                derive_seed(seed, 0, index as u64),
            )
            .map_err(|source| TrainError::Init {
                name: p.name.clone(),
                source,
            })?;
            tensors.push(tensor);
        }
        Ok(Self {
            names: plan.params.iter().map(|p| p.name.clone()).collect(),
            tensors,
        })
    }

    /// Parameters given as tensors (e.g. loaded weights), checked against the plan's shapes.
    pub fn from_tensors(
        plan: &ExecutionPlan,
        tensors: Vec<ArrayD<f32>>,
    ) -> Result<Self, TrainError> {
        if tensors.len() != plan.params.len() {
            return Err(TrainError::Param {
                name: plan.model.clone(),
                detail: format!(
                    "{} tensors given for {} parameters",
                    tensors.len(),
                    plan.params.len()
                ),
            });
        }
        let mut standard = Vec::with_capacity(tensors.len());
        for (p, t) in plan.params.iter().zip(tensors) {
            if t.shape() != p.shape.as_slice() {
                return Err(TrainError::Param {
                    name: p.name.clone(),
                    detail: format!("has shape {:?}, the plan declares {:?}", t.shape(), p.shape),
                });
            }
            // Kernels need row-major contiguous tensors.
            let t = if t.is_standard_layout() {
                t
            } else {
                ArrayD::from_shape_vec(IxDyn(&p.shape), t.iter().copied().collect()).map_err(
                    |e| TrainError::Param {
                        name: p.name.clone(),
                        detail: e.to_string(),
                    },
                )?
            };
            standard.push(t);
        }
        Ok(Self {
            names: plan.params.iter().map(|p| p.name.clone()).collect(),
            tensors: standard,
        })
    }

    /// Every tensor, in plan order.
    pub fn tensors(&self) -> &[ArrayD<f32>] {
        &self.tensors
    }

    /// Consumes the store, returning its tensors in plan order.
    pub fn into_tensors(self) -> Vec<ArrayD<f32>> {
        self.tensors
    }

    /// The parameter's names, in plan order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The tensor of the parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&ArrayD<f32>> {
        let i = self.names.iter().position(|n| n == name)?;
        self.tensors.get(i)
    }

    /// A view of parameter `index`.
    pub(crate) fn view(&self, index: usize) -> Option<ArrayViewD<'_, f32>> {
        self.tensors.get(index).map(|a| a.view())
    }

    /// Mutable access to every tensor (optimizer updates, moving statistics).
    pub(crate) fn tensors_mut(&mut self) -> &mut [ArrayD<f32>] {
        &mut self.tensors
    }
}
