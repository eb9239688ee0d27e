//! Fine-tuning's starting point: the parameters of a training plan initialized from a weights
//! file by name (`LAYER.PARAM`), the rest kept at their initializers, with a report of what
//! matched (Keras's `load_weights(..., skip_mismatch=False)` by layer name).
//!
//! Input: a safetensors file (untrusted: its size is checked against a limit before it is read,
//! and the reader stops at the limit) and the freshly initialized [`ParamStore`]. Output: the
//! store with every tensor the file has for it, and an [`InitReport`]; a tensor whose dtype or
//! shape does not fit is an error naming it (E07xx, located in the file), never a silent skip.

use crate::diag::Diagnostic;
use crate::plan::ExecutionPlan;
use crate::runtime::train::ParamStore;
use crate::runtime::weights::{read_safetensors, WeightsError};
use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, SafeTensors};
use std::path::Path;

/// What initialization from a file did, by parameter name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitReport {
    /// Parameters given the file's values.
    pub loaded: Vec<String>,
    /// Parameters of the model the file has no tensor for: they keep their initializers.
    pub kept: Vec<String>,
    /// Tensors of the file that are not parameters of the model.
    pub unused: Vec<String>,
}

/// Reads `path` (at most `max_bytes`) and initializes `params` (of `plan`) from it by name.
pub fn init_from_file(
    path: &Path,
    max_bytes: u64,
    plan: &ExecutionPlan,
    params: ParamStore,
) -> Result<(ParamStore, InitReport), Vec<Diagnostic>> {
    let shown = path.display().to_string();
    let fail = |e: WeightsError| vec![e.to_diagnostic(&shown)];
    let bytes = std::fs::File::open(path)
        .map_err(WeightsError::Read)
        .and_then(|file| read_safetensors(file, max_bytes))
        .map_err(fail)?;
    init_from_bytes(&bytes, plan, params)
        .map_err(|errors| errors.iter().map(|e| e.to_diagnostic(&shown)).collect())
}

/// [`init_from_file`] on bytes already read.
pub fn init_from_bytes(
    bytes: &[u8],
    plan: &ExecutionPlan,
    params: ParamStore,
) -> Result<(ParamStore, InitReport), Vec<WeightsError>> {
    let file =
        SafeTensors::deserialize(bytes).map_err(|e| vec![WeightsError::Format(e.to_string())])?;
    let mut report = InitReport::default();
    let mut errors = Vec::new();
    let names = params.names().to_vec();
    let mut tensors = params.into_tensors();
    for (slot, name) in tensors.iter_mut().zip(&names) {
        let Ok(view) = file.tensor(name) else {
            report.kept.push(name.clone());
            continue;
        };
        if view.dtype() != Dtype::F32 {
            errors.push(WeightsError::DType {
                name: name.clone(),
                found: format!("{:?}", view.dtype()),
            });
            continue;
        }
        if view.shape() != slot.shape() {
            errors.push(WeightsError::Shape {
                name: name.clone(),
                found: view.shape().to_vec(),
                expected: slot.shape().to_vec(),
            });
            continue;
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(first) = values.iter().position(|v| !v.is_finite()) {
            errors.push(WeightsError::NonFinite {
                name: name.clone(),
                count: values.iter().filter(|v| !v.is_finite()).count(),
                first,
            });
            continue;
        }
        match ArrayD::from_shape_vec(IxDyn(view.shape()), values) {
            Ok(t) => *slot = t,
            Err(e) => {
                errors.push(WeightsError::Format(format!("tensor `{name}`: {e}")));
                continue;
            }
        }
        report.loaded.push(name.clone());
    }
    let mut unused: Vec<String> = file
        .names()
        .into_iter()
        .filter(|n| !names.iter().any(|m| m == n))
        .map(str::to_string)
        .collect();
    unused.sort();
    report.unused = unused;
    if !errors.is_empty() {
        return Err(errors);
    }
    let params = ParamStore::from_tensors(plan, tensors)
        .map_err(|e| vec![WeightsError::PlanMismatch(e.to_string())])?;
    Ok((params, report))
}
