//! The one error type of the numeric kernels.
//!
//! Kernels check every shape, parameter and index they are handed before touching memory, and
//! report a problem as a [`KernelError`] instead of panicking. These are internal errors for the
//! interpreter (the checker has already validated user models); they carry enough text to debug.

use thiserror::Error;

/// What went wrong in a kernel call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KernelError {
    /// Two tensors (or a tensor and a parameter) have incompatible shapes.
    #[error("{op}: shape mismatch: {detail}")]
    Shape { op: &'static str, detail: String },
    /// A scalar parameter is out of its domain (a zero stride, a dropout rate of 1, ...).
    #[error("{op}: invalid parameter: {detail}")]
    Param { op: &'static str, detail: String },
    /// A tensor is not in standard (C-contiguous) layout; kernels need flat slices.
    #[error("{op}: tensor `{tensor}` is not in standard (row-major contiguous) layout")]
    Layout {
        op: &'static str,
        tensor: &'static str,
    },
    /// An embedding id falls outside the table.
    #[error("embedding: id {id} at flat position {position} is outside 0..{vocab}")]
    IdOutOfRange {
        id: i64,
        position: usize,
        vocab: usize,
    },
    /// A size computation overflowed `usize`.
    #[error("{op}: size overflow")]
    Overflow { op: &'static str },
}

/// Result of a kernel call.
pub type KernelResult<T> = Result<T, KernelError>;

/// Builds a [`KernelError::Shape`].
pub(crate) fn shape_err(op: &'static str, detail: impl Into<String>) -> KernelError {
    KernelError::Shape {
        op,
        detail: detail.into(),
    }
}

/// Builds a [`KernelError::Param`].
pub(crate) fn param_err(op: &'static str, detail: impl Into<String>) -> KernelError {
    KernelError::Param {
        op,
        detail: detail.into(),
    }
}

/// Fails with a shape error unless `found == expected`.
pub(crate) fn expect_shape(
    op: &'static str,
    tensor: &str,
    found: &[usize],
    expected: &[usize],
) -> KernelResult<()> {
    if found == expected {
        Ok(())
    } else {
        Err(shape_err(
            op,
            format!("`{tensor}` has shape {found:?}, expected {expected:?}"),
        ))
    }
}

/// Product of dimensions with overflow checking.
pub(crate) fn checked_product(op: &'static str, dims: &[usize]) -> KernelResult<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(KernelError::Overflow { op })
}
