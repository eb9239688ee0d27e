//! What the caller feeds the trainer, and how symbolic dimensions get their sizes.
//!
//! Input: one [`Input`] per plan input (f32 features, or i32/i64 token ids for embeddings).
//! Output: [`Bindings`] from each symbol (`N`, `T`, ...) to its size in this batch, and the
//! concrete shape of every plan value. Invariants: known dimensions must match exactly, a
//! symbol has one size across all inputs, no dimension is zero, and every size product is
//! checked (and capped) before anything is allocated.

use ndarray::ArrayViewD;

use super::error::TrainError;
use crate::ir::{DType, Dim, Fact};

/// One model input: features or integer ids, row-major contiguous.
#[derive(Debug, Clone)]
pub enum Input<'a> {
    F32(ArrayViewD<'a, f32>),
    I32(ArrayViewD<'a, i32>),
    I64(ArrayViewD<'a, i64>),
}

impl Input<'_> {
    /// The input's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Self::F32(a) => a.shape(),
            Self::I32(a) => a.shape(),
            Self::I64(a) => a.shape(),
        }
    }

    fn dtype(&self) -> DType {
        match self {
            Self::F32(_) => DType::F32,
            Self::I32(_) => DType::I32,
            Self::I64(_) => DType::I64,
        }
    }
}

/// Sizes of the symbolic dimensions in one batch.
pub(crate) type Bindings = Vec<(String, usize)>;

/// Largest element count of one buffer (16 GiB of f32), checked before allocating.
const MAX_ELEMENTS: usize = 1 << 32;

/// Binds every symbol of the input facts to the sizes of `inputs`.
pub(crate) fn bind(facts: &[(&str, &Fact)], inputs: &[Input<'_>]) -> Result<Bindings, TrainError> {
    if facts.len() != inputs.len() {
        return Err(TrainError::InputCount {
            expected: facts.len(),
            found: inputs.len(),
        });
    }
    let mut bound: Bindings = Vec::new();
    for ((name, fact), input) in facts.iter().zip(inputs) {
        let err = |detail: String| TrainError::Input {
            name: (*name).to_string(),
            detail,
        };
        if input.dtype() != fact.dtype {
            return Err(err(format!(
                "has dtype {}, the model expects {}",
                input.dtype(),
                fact.dtype
            )));
        }
        let shape = input.shape();
        if shape.len() != fact.rank() {
            return Err(err(format!(
                "has shape {shape:?}, the model expects {fact}"
            )));
        }
        for (dim, &size) in fact.dims.iter().zip(shape) {
            if size == 0 {
                return Err(err(format!("has an empty dimension in shape {shape:?}")));
            }
            match dim {
                Dim::Known(k) if *k != size => {
                    return Err(err(format!(
                        "has shape {shape:?}, the model expects {fact}"
                    )));
                }
                Dim::Known(_) => {}
                Dim::Symbol(s) => match bound.iter().find(|(b, _)| b == s) {
                    Some((_, b)) if *b != size => {
                        return Err(err(format!(
                            "binds `{s}` to {size}, another input bound it to {b}"
                        )));
                    }
                    Some(_) => {}
                    None => bound.push((s.clone(), size)),
                },
            }
        }
    }
    Ok(bound)
}

/// The concrete shape of a value with `fact` under `bindings`.
pub(crate) fn concrete(
    name: &str,
    fact: &Fact,
    bindings: &Bindings,
) -> Result<Vec<usize>, TrainError> {
    let err = |detail: String| TrainError::ValueShape {
        name: name.to_string(),
        detail,
    };
    let shape = fact
        .dims
        .iter()
        .map(|d| match d {
            Dim::Known(k) => Ok(*k),
            Dim::Symbol(s) => bindings
                .iter()
                .find(|(b, _)| b == s)
                .map(|(_, v)| *v)
                .ok_or_else(|| err(format!("dimension `{s}` is bound by no input"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| err(format!("shape {shape:?} is too large")))?;
    Ok(shape)
}
