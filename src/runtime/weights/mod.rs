//! Model weights: safetensors files in and out, fresh initialization, derived parameters.
//!
//! Input: an [`ExecutionPlan`] (its parameter table) and a `.safetensors` file, or a seed.
//! Output: [`Weights`], one `f32` tensor per parameter of the plan, indexed like the plan's
//! parameter table (so `ParamId(i)` is entry `i`).
//!
//! File layout: a standard safetensors file (8-byte little-endian header length, a JSON header,
//! raw data) holding exactly one tensor per *stored* parameter, named `LAYER.PARAM`
//! (`conv2d_1.kernel`, `lstm.recurrent_kernel`, `batch_normalization.moving_mean`), dtype `F32`
//! (little-endian), in Keras layouts: conv kernels `[kh, kw, in, out]`, dense kernels
//! `[in, out]`, recurrent kernels `[in, G·units]` with Keras gate order, biases `[out]` (GRU
//! `[2, 3·units]`), embedding tables `[vocab, dim]`. A Keras model's `get_weights()` arrays can be
//! written under these names as they are. Derived parameters (an inference rewrite such as a
//! batch norm folded into a conv) are never in the file: they are computed from the stored ones
//! by their [`Recipe`] after loading (formulas in `crate::ir`). A Keras or PyTorch file given
//! instead is named by its first bytes (`foreign`: E0816, E0817) with the converter to run.
//!
//! Invariants: a loaded file is untrusted. Every tensor is checked (name, dtype, shape, finite
//! values) and *every* problem is reported by tensor name; a malformed file (header lies,
//! offsets past the end) is the safetensors crate's error, mapped to a diagnostic, never a
//! panic. Saving is atomic ([`crate::util::write_atomic`]) and writes tensors sorted by name.
//! Fresh weights draw parameter `name` from seed `param_seed(seed, name)`, so adding a layer
//! leaves the other layers' initial weights unchanged.
//!
//! Parts: `error` (the problems and their diagnostics), `fresh` (initialization from a seed),
//! `derive` (derived parameters from stored ones), `operands` (their checked inputs),
//! `bounded_read` (reading a file no further than its header says), `foreign` (other
//! frameworks' files named by their first bytes).

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};

use crate::diag::Diagnostic;
use crate::ir::{Param, ParamId, ParamSource};
use crate::plan::ExecutionPlan;
use crate::util::limits::DEFAULT_MAX_PARAM_BYTES;

pub use bounded_read::read_safetensors;
pub use error::{to_diagnostics, WeightsError};
pub use foreign::Foreign;
pub use fresh::{init_weights, init_weights_within, param_seed};

/// One parameter tensor with its name.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightEntry {
    pub name: String,
    /// Read from / written to weight files (false for derived parameters).
    pub stored: bool,
    pub value: ArrayD<f32>,
}

/// Every parameter of a plan, in the plan's parameter order.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    entries: Vec<WeightEntry>,
}

impl Weights {
    /// The tensor of parameter `id`.
    pub fn get(&self, id: ParamId) -> Option<&ArrayD<f32>> {
        self.entries.get(id.index()).map(|e| &e.value)
    }

    /// The tensor of the parameter called `name`.
    pub fn by_name(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| &e.value)
    }

    /// Every entry, in the plan's parameter order.
    pub fn entries(&self) -> &[WeightEntry] {
        &self.entries
    }

    /// Mutable access to stored tensors (for training); call [`Weights::derive`] afterwards.
    pub fn entries_mut(&mut self) -> &mut [WeightEntry] {
        &mut self.entries
    }

    /// Builds weights for `plan` from named stored tensors (a checkpoint, a test), checking each
    /// like a file would be, then computes the derived parameters.
    pub fn from_named(
        plan: &ExecutionPlan,
        tensors: Vec<(String, ArrayD<f32>)>,
    ) -> Result<Self, Vec<WeightsError>> {
        let mut slots: Vec<Option<ArrayD<f32>>> = vec![None; plan.params.len()];
        let mut present = vec![false; plan.params.len()];
        let mut errors = Vec::new();
        for (name, value) in tensors {
            match stored_index(&plan.params, &name) {
                None => errors.push(WeightsError::Unexpected { name }),
                Some(i) => {
                    present[i] = true;
                    if let Err(e) = check_tensor(&plan.params[i], value.shape(), &value) {
                        errors.push(e);
                    } else if let Some(slot) = slots.get_mut(i) {
                        *slot = Some(value);
                    }
                }
            }
        }
        Self::assemble(plan, slots, &present, errors)
    }

    /// Fills stored slots, reports absent ones (not `present` at all), and derives the rest.
    fn assemble(
        plan: &ExecutionPlan,
        slots: Vec<Option<ArrayD<f32>>>,
        present: &[bool],
        mut errors: Vec<WeightsError>,
    ) -> Result<Self, Vec<WeightsError>> {
        let mut entries = Vec::with_capacity(plan.params.len());
        for (i, (p, slot)) in plan.params.iter().zip(slots).enumerate() {
            let stored = p.source == ParamSource::Stored;
            let absent = stored && !present.get(i).copied().unwrap_or(false);
            if slot.is_none() && absent {
                errors.push(WeightsError::Missing {
                    name: p.name.clone(),
                    shape: p.shape.clone(),
                });
            }
            let value = slot.unwrap_or_else(|| ArrayD::zeros(IxDyn(&[0])));
            entries.push(WeightEntry {
                name: p.name.clone(),
                stored,
                value,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut w = Weights { entries };
        w.derive(plan).map_err(|e| vec![e])?;
        Ok(w)
    }

    /// Recomputes every derived parameter from the stored ones (in parameter order, so a recipe
    /// may use an earlier derived parameter).
    pub fn derive(&mut self, plan: &ExecutionPlan) -> Result<(), WeightsError> {
        if plan.params.len() != self.entries.len() {
            return Err(WeightsError::PlanMismatch(format!(
                "{} tensors for {} parameters",
                self.entries.len(),
                plan.params.len()
            )));
        }
        for (i, p) in plan.params.iter().enumerate() {
            if let ParamSource::Derived(recipe) = &p.source {
                let value = derive::materialize(recipe, i, &self.entries)
                    .map_err(|m| WeightsError::PlanMismatch(format!("{}: {m}", p.name)))?;
                if value.shape() != p.shape.as_slice() {
                    return Err(WeightsError::PlanMismatch(format!(
                        "{} is computed with shape {:?}, the plan says {:?}",
                        p.name,
                        value.shape(),
                        p.shape
                    )));
                }
                self.entries[i].value = value;
            }
        }
        Ok(())
    }
}

fn stored_index(params: &[Param], name: &str) -> Option<usize> {
    params
        .iter()
        .position(|p| p.name == name && p.source == ParamSource::Stored)
}

fn check_tensor(p: &Param, shape: &[usize], value: &ArrayD<f32>) -> Result<(), WeightsError> {
    if shape != p.shape.as_slice() {
        return Err(WeightsError::Shape {
            name: p.name.clone(),
            found: shape.to_vec(),
            expected: p.shape.clone(),
        });
    }
    let mut count = 0;
    let mut first = None;
    for (i, v) in value.iter().enumerate() {
        if !v.is_finite() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        Some(first) => Err(WeightsError::NonFinite {
            name: p.name.clone(),
            count,
            first,
        }),
        None => Ok(()),
    }
}

/// Reads and checks a weights file for `plan`. Every problem becomes one diagnostic located in
/// the file. The read is bounded by the file's own header and the default parameter limit.
pub fn load_weights(path: &Path, plan: &ExecutionPlan) -> Result<Weights, Vec<Diagnostic>> {
    let bytes = std::fs::File::open(path)
        .map_err(WeightsError::Read)
        .and_then(|file| read_safetensors(file, DEFAULT_MAX_PARAM_BYTES))
        .map_err(|e| to_diagnostics(&[e], path))?;
    weights_from_bytes(&bytes, plan).map_err(|errors| to_diagnostics(&errors, path))
}

/// Parses safetensors bytes for `plan` (see [`load_weights`]).
pub fn weights_from_bytes(
    bytes: &[u8],
    plan: &ExecutionPlan,
) -> Result<Weights, Vec<WeightsError>> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| {
        vec![foreign::identify(bytes)
            .map_or(WeightsError::Format(e.to_string()), WeightsError::Foreign)]
    })?;
    let mut tensors: Vec<_> = file.iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    let mut slots: Vec<Option<ArrayD<f32>>> = vec![None; plan.params.len()];
    let mut present = vec![false; plan.params.len()];
    let mut errors = Vec::new();
    for (name, view) in tensors {
        let Some(i) = stored_index(&plan.params, name) else {
            errors.push(WeightsError::Unexpected {
                name: name.to_string(),
            });
            continue;
        };
        present[i] = true;
        let p = &plan.params[i];
        if view.dtype() != Dtype::F32 {
            errors.push(WeightsError::DType {
                name: name.to_string(),
                found: format!("{:?}", view.dtype()),
            });
            continue;
        }
        if view.shape() != p.shape.as_slice() {
            errors.push(WeightsError::Shape {
                name: name.to_string(),
                found: view.shape().to_vec(),
                expected: p.shape.clone(),
            });
            continue;
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let value = match ArrayD::from_shape_vec(IxDyn(&p.shape), data) {
            Ok(v) => v,
            Err(e) => {
                errors.push(WeightsError::Format(format!("tensor `{name}`: {e}")));
                continue;
            }
        };
        match check_tensor(p, &p.shape, &value) {
            Ok(()) => slots[i] = Some(value),
            Err(e) => errors.push(e),
        }
    }
    Weights::assemble(plan, slots, &present, errors)
}

/// The stored tensors as safetensors bytes (sorted by name).
pub fn weights_to_bytes(weights: &Weights) -> Result<Vec<u8>, WeightsError> {
    let mut stored: Vec<(&str, Vec<u8>, Vec<usize>)> = weights
        .entries
        .iter()
        .filter(|e| e.stored)
        .map(|e| {
            let bytes = e.value.iter().flat_map(|v| v.to_le_bytes()).collect();
            (e.name.as_str(), bytes, e.value.shape().to_vec())
        })
        .collect();
    stored.sort_by(|a, b| a.0.cmp(b.0));
    let views = stored
        .iter()
        .map(|(name, bytes, shape)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (*name, v))
                .map_err(|e| WeightsError::Format(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, None).map_err(|e| WeightsError::Format(e.to_string()))
}

/// Writes the stored tensors to `path` atomically.
pub fn save_weights(path: &Path, weights: &Weights) -> Result<(), WeightsError> {
    let bytes = weights_to_bytes(weights)?;
    crate::util::write_atomic(path, &bytes).map_err(WeightsError::Write)
}

mod bounded_read;
mod derive;
mod error;
mod foreign;
mod fresh;
mod operands;
