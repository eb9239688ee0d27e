//! The data budget: how many bytes one array of a data set held in memory (its features, or its
//! labels) may take, and the one rule that applies it everywhere.
//!
//! Input: a row count (when known), a per-sample shape and an element width. Output: the array's
//! bytes (checked arithmetic; `None` is past any budget), and arrays allocated only after the
//! rule said yes. Invariant: `check` (statically, from a pipeline's types: per sample, and per
//! data set when the source's row count is known, [`data_set_errors`]), the loader (before
//! every `map` step and generator allocates, [`zeros`], [`filled`], [`with_capacity`]) and a
//! plan's stored steps on load all ask [`within`] about the same figure, so a pipeline `check`
//! passes never fails here on sizes it could know, and an allocation it allows that the system
//! refuses is E0904, never an abort.

use super::samples::{with_count, MEMORY_BUDGET_BYTES};
use super::spec::{PipelineSpec, SourceKind, Transform};
use super::typing::{DType, StepError, StepType};
use crate::diag::codes::{CHECK_DATA_SET_TOO_LARGE, DATA_TOO_LARGE, IO_OUT_OF_MEMORY};
use crate::diag::{human_bytes, Diagnostic};
use ndarray::ArrayD;

/// The budget, in bytes, of one array (features or labels) of a data set.
pub const BUDGET: u64 = MEMORY_BUDGET_BYTES as u64;

/// Bytes of one element of `dtype`.
pub fn width(dtype: DType) -> u64 {
    match dtype {
        DType::F32 => 4,
        DType::I64 => 8,
    }
}

/// Bytes of `rows` samples of shape `sample`, `width` bytes each element; `None` on overflow.
pub fn bytes(rows: usize, sample: &[usize], width: u64) -> Option<u64> {
    let elements = sample.iter().try_fold(rows, |acc, &d| acc.checked_mul(d))?;
    u64::try_from(elements).ok()?.checked_mul(width)
}

/// Whether an array of `bytes` (`None`: more than 64 bits) fits the budget.
pub fn within(bytes: Option<u64>) -> bool {
    bytes.is_some_and(|b| b <= BUDGET)
}

/// `bytes` as people read it, or "more than 2^64 bytes".
pub fn describe(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "more than 2^64 bytes".to_string(), human_bytes)
}

fn shape_text(rows: usize, sample: &[usize]) -> String {
    let dims: Vec<String> = std::iter::once(rows)
        .chain(sample.iter().copied())
        .map(|d| d.to_string())
        .collect();
    format!("[{}]", dims.join(", "))
}

/// E0621 for `what` (a step or generator) making an array of `rows` × `sample` past the budget.
fn over_budget(what: &str, rows: usize, sample: &[usize], bytes: Option<u64>) -> Diagnostic {
    Diagnostic::error(
        DATA_TOO_LARGE,
        format!(
            "{what} would make an array of {} ({}), more than the {} data budget",
            shape_text(rows, sample),
            describe(bytes),
            human_bytes(BUDGET)
        ),
    )
    .help("use fewer samples, or smaller sizes in this step")
}

/// E0904 when the system refuses `bytes` the budget allowed.
pub fn out_of_memory(what: &str, bytes: u64) -> Diagnostic {
    Diagnostic::error(
        IO_OUT_OF_MEMORY,
        format!(
            "out of memory: could not allocate {bytes} bytes ({}) for {what}",
            human_bytes(bytes)
        ),
    )
    .help("free memory, or use fewer samples or a smaller batch")
}

/// A vector with room for `len` elements of `width` bytes (the array `rows` × `sample` of
/// `what`): refused past the budget (E0621), and E0904 when the allocator says no.
pub fn with_capacity<T>(
    rows: usize,
    sample: &[usize],
    width: u64,
    what: &str,
) -> Result<Vec<T>, Diagnostic> {
    let total = bytes(rows, sample, width);
    let len = sample.iter().try_fold(rows, |a, &d| a.checked_mul(d));
    let (Some(b), Some(len)) = (total.filter(|&b| b <= BUDGET), len) else {
        return Err(over_budget(what, rows, sample, total));
    };
    let mut v = Vec::new();
    crate::util::alloc::fallible(|| v.try_reserve_exact(len))
        .map_err(|_| out_of_memory(what, b))?;
    Ok(v)
}

/// An array `[rows, ...sample]` filled with `value`, allocated as [`with_capacity`] says.
pub fn filled<T: Clone>(
    rows: usize,
    sample: &[usize],
    width: u64,
    value: T,
    what: &str,
) -> Result<ArrayD<T>, Diagnostic> {
    let mut v = with_capacity(rows, sample, width, what)?;
    let len = sample
        .iter()
        .try_fold(rows, |a, &d| a.checked_mul(d))
        .unwrap_or(0);
    v.resize(len, value);
    ArrayD::from_shape_vec(with_count(rows, sample), v).map_err(|e| {
        Diagnostic::error(
            DATA_TOO_LARGE,
            format!("{what}: cannot shape {}: {e}", shape_text(rows, sample)),
        )
    })
}

/// A zeroed f32 array `[rows, ...sample]`, allocated as [`with_capacity`] says.
pub fn zeros(rows: usize, sample: &[usize], what: &str) -> Result<ArrayD<f32>, Diagnostic> {
    filled(rows, sample, 4, 0.0, what)
}

/// The row count a source yields, when the spec alone says it (the synthetic generators).
pub fn source_rows(spec: &PipelineSpec) -> Option<usize> {
    match &spec.source.kind {
        SourceKind::Regression(r) => Some(r.n),
        SourceKind::Tokens(t) => Some(t.n),
        SourceKind::Sine(s) => Some(s.n),
        SourceKind::Csv(_) | SourceKind::Idx(_) | SourceKind::Npy(_) => None,
    }
}

/// The rows after `op` given `rows` before it: a window makes `n + 1 − size − horizon` pairs.
pub fn rows_after(op: &Transform, rows: usize) -> usize {
    match op {
        Transform::Window { size, horizon } => rows
            .saturating_add(1)
            .saturating_sub(size.saturating_add(*horizon)),
        _ => rows,
    }
}

/// E0217 at the first point of the pipeline (its source, or a `map` step) whose whole data set,
/// features or labels, exceeds the budget, when the source's row count is known statically.
/// `trace` is [`super::typing::step_types`]'s: the source, then each `map` step, then each
/// `augment` step (augmentation works a batch at a time, so it holds no data set).
pub fn data_set_errors(spec: &PipelineSpec, trace: &[StepType]) -> Option<StepError> {
    let mut rows = source_rows(spec)?;
    let maps = std::iter::once(None).chain(spec.preprocess.iter().map(|s| Some(&s.op)));
    for (step, op) in trace.iter().zip(maps) {
        if let Some(op) = op {
            rows = rows_after(op, rows);
        }
        let arrays = [
            step.shape
                .as_deref()
                .map(|s| ("features", s, width(step.dtype))),
            step.label
                .as_ref()
                .map(|l| ("labels", l.shape.as_slice(), width(l.dtype))),
        ];
        for (what, sample, w) in arrays.into_iter().flatten() {
            let total = bytes(rows, sample, w);
            if within(total) {
                continue;
            }
            let per_sample = describe(bytes(1, sample, w));
            let place = if op.is_some() {
                "this step"
            } else {
                "this source"
            };
            return Some(StepError {
                code: CHECK_DATA_SET_TOO_LARGE,
                span: step.span,
                message: format!(
                    "{place} makes {what} of {} ({} samples of {per_sample}: {}), more than a data set may hold in memory ({})",
                    shape_text(rows, sample),
                    rows,
                    describe(total),
                    human_bytes(BUDGET)
                ),
                help: Some(
                    "use fewer samples (the source's `n:`), or smaller sizes in this step".into(),
                ),
            });
        }
    }
    None
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
