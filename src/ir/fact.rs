//! Facts about values: dtype and shape, with symbolic dimensions (the batch `N`, a sequence `T`).
//! The dtype and dimension types are the checker's, so lowering carries them over as they are.

use serde::{Deserialize, Serialize};
use std::fmt;

pub use crate::check::types::{DType, Dim};

/// The type of a value: dtype and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fact {
    pub dtype: DType,
    pub dims: Vec<Dim>,
}

impl Fact {
    pub fn new(dtype: DType, dims: Vec<Dim>) -> Self {
        Self { dtype, dims }
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Elements per sample: the product of all dims but the first (the batch), when all are known.
    /// `None` when a non-batch dim is symbolic or the product overflows.
    pub fn elements_per_sample(&self) -> Option<usize> {
        self.dims
            .iter()
            .skip(1)
            .try_fold(1usize, |acc, d| acc.checked_mul(d.known()?))
    }

    /// Bytes per sample (see [`Fact::elements_per_sample`]).
    pub fn bytes_per_sample(&self) -> Option<usize> {
        self.elements_per_sample()?.checked_mul(self.dtype.size())
    }

    /// The known size of axis `i` (negative counts from the end).
    pub fn dim(&self, i: isize) -> Option<usize> {
        let idx = if i < 0 {
            self.dims.len().checked_sub(i.unsigned_abs())?
        } else {
            i as usize
        };
        self.dims.get(idx)?.known()
    }
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}
