//! Inputs handed to the interpreter, checked against the plan's signature, and the concrete
//! shape of every value once symbolic dimensions (`N`, `T`) are bound.
//!
//! Input: the plan's input facts and the caller's arrays. Output: a [`Bindings`] table (symbol →
//! size) and, from it, every value's shape. Invariants: a fixed dim must match exactly; a
//! symbol takes the first size it meets and every later use must agree; all arithmetic on sizes
//! is checked.

use ndarray::ArrayViewD;

use super::error::RunError;
use crate::ir::{DType, Dim, Fact};

/// One input array, borrowed from the caller.
#[derive(Clone, Debug)]
pub enum TensorRef<'a> {
    F32(ArrayViewD<'a, f32>),
    /// Token ids (or other integers), accepted for i32 and i64 inputs.
    I32(ArrayViewD<'a, i32>),
    I64(ArrayViewD<'a, i64>),
}

impl TensorRef<'_> {
    pub fn shape(&self) -> &[usize] {
        match self {
            TensorRef::F32(a) => a.shape(),
            TensorRef::I32(a) => a.shape(),
            TensorRef::I64(a) => a.shape(),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            TensorRef::F32(_) => DType::F32,
            TensorRef::I32(_) => DType::I32,
            TensorRef::I64(_) => DType::I64,
        }
    }
}

/// Sizes bound to the plan's symbolic dimensions, in first-seen order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bindings(pub Vec<(String, usize)>);

impl Bindings {
    pub fn get(&self, symbol: &str) -> Option<usize> {
        self.0.iter().find(|(s, _)| s == symbol).map(|&(_, v)| v)
    }

    /// The batch size: the first axis of the first input (1 for a scalar signature).
    pub fn batch(&self, first_input: &Fact) -> usize {
        match first_input.dims.first() {
            Some(Dim::Known(n)) => *n,
            Some(Dim::Symbol(s)) => self.get(s).unwrap_or(1),
            None => 1,
        }
    }

    /// The concrete shape of `fact`, or `None` if a symbol is unbound.
    pub fn shape(&self, fact: &Fact) -> Option<Vec<usize>> {
        fact.dims
            .iter()
            .map(|d| match d {
                Dim::Known(n) => Some(*n),
                Dim::Symbol(s) => self.get(s),
            })
            .collect()
    }
}

/// Whether an array of dtype `found` may feed an input declared `declared`.
fn dtype_fits(declared: DType, found: DType) -> bool {
    declared == found || (declared.is_integer() && found.is_integer())
}

/// Checks each input's dtype and shape against `facts` (named `names`) and binds symbols.
pub fn bind(facts: &[(&str, &Fact)], inputs: &[TensorRef<'_>]) -> Result<Bindings, RunError> {
    if facts.len() != inputs.len() {
        return Err(RunError::InputCount {
            expected: facts.len(),
            found: inputs.len(),
        });
    }
    let mut b = Bindings::default();
    for ((name, fact), x) in facts.iter().zip(inputs) {
        if !dtype_fits(fact.dtype, x.dtype()) {
            return Err(RunError::InputDType {
                input: (*name).to_string(),
                expected: fact.dtype,
                found: x.dtype(),
            });
        }
        let shape_err = |detail: String| RunError::InputShape {
            input: (*name).to_string(),
            expected: fact.to_string(),
            found: x.shape().to_vec(),
            detail,
        };
        if x.shape().len() != fact.rank() {
            return Err(shape_err(String::new()));
        }
        for (d, &size) in fact.dims.iter().zip(x.shape()) {
            match d {
                Dim::Known(n) if *n != size => return Err(shape_err(String::new())),
                Dim::Known(_) => {}
                Dim::Symbol(s) => match b.get(s) {
                    Some(bound) if bound != size => {
                        return Err(shape_err(format!(
                            "; `{s}` is already {bound} from an earlier input"
                        )))
                    }
                    Some(_) => {}
                    None if size == 0 => {
                        return Err(shape_err(format!("; `{s}` must be at least 1")))
                    }
                    None => b.0.push((s.clone(), size)),
                },
            }
        }
    }
    Ok(b)
}

/// Counts NaN/Inf values and the first position, for a finite-input check.
pub fn non_finite(x: &ArrayViewD<'_, f32>) -> Option<(usize, usize)> {
    if let Some(flat) = x.as_slice() {
        // Contiguous (the usual case): a count the compiler vectorizes, then the first only
        // when there is one.
        let count = flat.iter().filter(|v| !v.is_finite()).count();
        return (count > 0)
            .then(|| flat.iter().position(|v| !v.is_finite()))
            .flatten()
            .map(|first| (count, first));
    }
    let mut count = 0;
    let mut first = None;
    for (i, v) in x.iter().enumerate() {
        if !v.is_finite() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    first.map(|f| (count, f))
}
