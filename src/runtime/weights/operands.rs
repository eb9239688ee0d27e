//! The operands of a derived parameter's [`crate::ir::Recipe`]: an earlier entry, as a tensor or
//! as a vector of a given length, and the batch norm scale the folding recipes share.
//!
//! Input: the weight entries before the one being derived. Output: borrowed tensors or the
//! scale, or a message naming the parameter that does not fit. Invariants: a recipe reads only
//! parameters defined before it (refused otherwise, never read out of order).

use ndarray::ArrayD;

use super::WeightEntry;
use crate::ir::ParamId;

pub(super) fn source(
    entries: &[WeightEntry],
    id: ParamId,
    before: usize,
) -> Result<&ArrayD<f32>, String> {
    if id.index() >= before {
        return Err(format!(
            "recipe refers to parameter {} defined after it",
            id.0
        ));
    }
    entries
        .get(id.index())
        .map(|e| &e.value)
        .ok_or_else(|| format!("recipe refers to missing parameter {}", id.0))
}

pub(super) fn vector(
    entries: &[WeightEntry],
    id: ParamId,
    before: usize,
    len: usize,
) -> Result<&[f32], String> {
    let v = source(entries, id, before)?;
    match v.as_slice() {
        Some(s) if s.len() == len => Ok(s),
        _ => Err(format!("parameter {} is not a vector of {len}", id.0)),
    }
}

/// `gamma / sqrt(variance + epsilon)` per channel (the batch norm scale).
pub(super) fn bn_scale(gamma: &[f32], variance: &[f32], epsilon: f32) -> Vec<f32> {
    gamma
        .iter()
        .zip(variance)
        .map(|(&g, &v)| g * (1.0 / (v + epsilon).sqrt()))
        .collect()
}
