//! What a shape rule returns, why it can fail, and the checked helpers every family's rule uses.
//!
//! Input: facts of a layer's inputs. Output: an [`Inferred`] (output fact, parameters, FLOPs per
//! sample) or a typed [`RuleError`] that the checker turns into a located diagnostic and the IR
//! verifier into an internal error. Invariants: all size arithmetic is checked; FLOPs count a
//! multiply-add as 2, an elementwise op as 1 per element, and treat symbolic non-batch dims
//! (such as a sequence length `T`) as 1.

use super::param::ParamInfo;
use super::symbols::{Conflict, Symbols};
use super::types::{DType, Dim, Fact};
use crate::diag::Span;
use std::fmt;

/// What a layer produces.
#[derive(Clone, Debug, PartialEq)]
pub struct Inferred {
    pub output: Fact,
    pub params: Vec<ParamInfo>,
    pub flops: u64,
}

impl Inferred {
    /// An output with no parameters.
    pub fn plain(output: Fact, flops: u64) -> Self {
        Self {
            output,
            params: Vec::new(),
            flops,
        }
    }
}

/// Why a layer's rule rejected its inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleError {
    /// `expected` describes the rank wanted, e.g. "4 ([batch, height, width, channels])".
    Rank {
        expected: &'static str,
        found: usize,
    },
    NeedsFloat {
        found: DType,
    },
    NeedsInteger {
        found: DType,
    },
    DTypeMismatch {
        first: DType,
        other: DType,
        input: usize,
    },
    ShapeMismatch {
        axis: usize,
        first: Dim,
        other: Dim,
        input: usize,
    },
    Conflict(Conflict),
    /// The window (`needed` wide) does not fit `input` along `axis` (1 = height, 2 = width).
    Window {
        axis: usize,
        input: usize,
        needed: usize,
    },
    /// A size that must be known is a symbol.
    Unknown {
        axis: usize,
        symbol: String,
    },
    /// A size overflowed or is zero.
    Size(String),
    InputCount {
        found: usize,
    },
    Axis {
        axis: i64,
        rank: usize,
    },
    Reshape(String),
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::Rank { expected, found } => {
                write!(f, "expected rank {expected}, got rank {found}")
            }
            RuleError::NeedsFloat { found } => write!(f, "expected f32 input, got {found}"),
            RuleError::NeedsInteger { found } => write!(f, "expected integer ids, got {found}"),
            RuleError::DTypeMismatch {
                first,
                other,
                input,
            } => write!(f, "input {input} is {other}, the first is {first}"),
            RuleError::ShapeMismatch {
                axis: usize::MAX,
                first,
                other,
                input,
            } => write!(f, "input {input} has rank {other}, the first {first}"),
            RuleError::ShapeMismatch {
                axis,
                first,
                other,
                input,
            } => write!(
                f,
                "input {input} has {other} on axis {axis}, the first {first}"
            ),
            RuleError::Conflict(c) => {
                write!(f, "{} would be both {} and {}", c.symbol, c.first, c.second)
            }
            RuleError::Window {
                axis,
                input,
                needed,
            } => write!(
                f,
                "a window {needed} wide does not fit {input} on axis {axis}"
            ),
            RuleError::Unknown { axis, symbol } => {
                write!(f, "axis {axis} must be known, got {symbol}")
            }
            RuleError::Size(s) | RuleError::Reshape(s) => f.write_str(s),
            RuleError::InputCount { found } => write!(f, "got {found} inputs"),
            RuleError::Axis { axis, rank } => {
                write!(f, "axis {axis} is out of range for rank {rank}")
            }
        }
    }
}

/// A shape rule's result.
pub type Rule = Result<Inferred, RuleError>;

/// The rank a window layer wants.
pub const RANK4: &str = "4 ([batch, height, width, channels])";
/// The rank a recurrent layer wants.
pub const RANK3: &str = "3 ([batch, time, features])";

/// The size of `axis`, which must be known.
pub fn known(dims: &[Dim], axis: usize) -> Result<usize, RuleError> {
    match dims.get(axis) {
        Some(Dim::Known(n)) => Ok(*n),
        Some(Dim::Symbol(s)) => Err(RuleError::Unknown {
            axis,
            symbol: s.clone(),
        }),
        None => Err(RuleError::Size(format!("axis {axis} does not exist"))),
    }
}

/// `a * b`, checked.
pub fn mul(a: usize, b: usize) -> Result<usize, RuleError> {
    a.checked_mul(b)
        .ok_or_else(|| RuleError::Size(format!("{a} × {b} overflows")))
}

/// The product of sizes, or `None` on overflow.
pub fn product(sizes: impl IntoIterator<Item = usize>) -> Option<usize> {
    sizes.into_iter().try_fold(1usize, usize::checked_mul)
}

/// Elements of one sample (symbolic dims count as 1).
pub fn per_sample(dims: &[Dim]) -> Result<usize, RuleError> {
    dims.iter()
        .skip(1)
        .try_fold(1usize, |acc, d| mul(acc, d.known().unwrap_or(1)))
}

/// The input must be a float tensor.
pub fn need_float(x: &Fact) -> Result<(), RuleError> {
    if x.dtype.is_integer() {
        Err(RuleError::NeedsFloat { found: x.dtype })
    } else {
        Ok(())
    }
}

/// The input must have exactly `rank` dims.
pub fn need_rank(x: &Fact, rank: usize, expected: &'static str) -> Result<(), RuleError> {
    if x.rank() == rank {
        Ok(())
    } else {
        Err(RuleError::Rank {
            expected,
            found: x.rank(),
        })
    }
}

/// The input must have at least `rank` dims.
pub fn need_rank_at_least(x: &Fact, rank: usize, expected: &'static str) -> Result<(), RuleError> {
    if x.rank() >= rank {
        Ok(())
    } else {
        Err(RuleError::Rank {
            expected,
            found: x.rank(),
        })
    }
}

/// Exactly one input.
pub fn one<'f>(inputs: &[&'f Fact]) -> Result<&'f Fact, RuleError> {
    match inputs {
        [x] => Ok(x),
        _ => Err(RuleError::InputCount {
            found: inputs.len(),
        }),
    }
}

/// A possibly negative axis as an index into `rank` dims.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize, RuleError> {
    let r = i64::try_from(rank).unwrap_or(i64::MAX);
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(RuleError::Axis { axis, rank });
    }
    usize::try_from(a).map_err(|_| RuleError::Axis { axis, rank })
}

/// Input `input` must have the first input's dtype.
pub fn same_dtype(x: &Fact, y: &Fact, input: usize) -> Result<(), RuleError> {
    if x.dtype == y.dtype {
        Ok(())
    } else {
        Err(RuleError::DTypeMismatch {
            first: x.dtype,
            other: y.dtype,
            input,
        })
    }
}

/// Makes dim `a` of the first input and `b` of input `input` equal.
pub fn unify(
    symbols: &mut Symbols,
    a: &Dim,
    b: &Dim,
    axis: usize,
    input: usize,
    at: Span,
) -> Result<(), RuleError> {
    match symbols.unify(a, b, at) {
        Ok(true) => Ok(()),
        Ok(false) => Err(RuleError::ShapeMismatch {
            axis,
            first: a.clone(),
            other: b.clone(),
            input,
        }),
        Err(c) => Err(RuleError::Conflict(c)),
    }
}

/// The output height and width of a window over an NHWC input `x` (rank and dtype already
/// checked): Keras's arithmetic of [`super::window::output_size`] on axes 1 and 2.
pub fn window_output_hw(
    x: &Fact,
    kernel: [usize; 2],
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: &super::types::Padding,
) -> Result<(usize, usize), RuleError> {
    use super::window::{output_size, WindowError};
    let out = |axis: usize| {
        let input = known(&x.dims, axis)?;
        let i = axis - 1;
        output_size(input, kernel[i], strides[i], dilation[i], padding, i).map_err(|e| match e {
            WindowError::TooLarge(t) => RuleError::Window {
                axis,
                input: t.input,
                needed: t.needed,
            },
            WindowError::Overflow => RuleError::Size("the window size overflows".into()),
        })
    };
    Ok((out(1)?, out(2)?))
}
