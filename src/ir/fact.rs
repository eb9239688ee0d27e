//! Facts about values: dtype and shape, with symbolic dimensions (the batch `N`, a sequence `T`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Element types a plan can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    I32,
    I64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
            DType::I64 => "i64",
        })
    }
}

/// One dimension: a known size or a symbol bound at run time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dim {
    Known(usize),
    Symbol(String),
}

impl Dim {
    pub fn known(&self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(*n),
            Dim::Symbol(_) => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Symbol(s) => f.write_str(s),
        }
    }
}

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
