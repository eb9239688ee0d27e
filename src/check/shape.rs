//! Symbolic dims and their unification, and the Keras size arithmetic of windows.
//!
//! Input: dims of tensor facts, window parameters. Output: resolved dims, output sizes, or a
//! typed error saying why not. Invariants: all arithmetic is checked; a symbol is bound at most
//! once (a second, different size is a [`Conflict`] naming both places); alias chains are
//! followed a bounded number of steps.

use super::types::{Dim, Padding};
use crate::diag::Span;
use std::collections::HashMap;

/// What a symbol has been unified with.
#[derive(Clone, Debug)]
enum Binding {
    Size(usize, Span),
    Alias(String),
}

/// A symbol that would have to be two different sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub symbol: String,
    pub first: usize,
    pub first_span: Span,
    pub second: usize,
}

/// The symbol table of one model (and its train blocks).
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    bindings: HashMap<String, Binding>,
}

impl Symbols {
    /// Follows bindings to a size or to an unbound symbol.
    pub fn resolve(&self, dim: &Dim) -> Dim {
        let mut cur = dim.clone();
        // Aliases only ever point to symbols that were unbound when linked, so chains are
        // acyclic; the cap is a second guard.
        for _ in 0..=self.bindings.len() {
            let Dim::Symbol(s) = &cur else { return cur };
            match self.bindings.get(s) {
                None => return cur,
                Some(Binding::Size(n, _)) => return Dim::Known(*n),
                Some(Binding::Alias(t)) => cur = Dim::Symbol(t.clone()),
            }
        }
        cur
    }

    /// Resolves every dim.
    pub fn resolve_all(&self, dims: &[Dim]) -> Vec<Dim> {
        dims.iter().map(|d| self.resolve(d)).collect()
    }

    /// Where and to what a symbol was bound, if it was.
    fn bound_at(&self, symbol: &str) -> Option<(usize, Span)> {
        let mut cur = symbol.to_string();
        for _ in 0..=self.bindings.len() {
            match self.bindings.get(&cur)? {
                Binding::Size(n, s) => return Some((*n, *s)),
                Binding::Alias(t) => cur.clone_from(t),
            }
        }
        None
    }

    /// Makes `a` and `b` equal, binding symbols as needed. `Ok(false)` means two different
    /// known sizes (a plain mismatch, for the caller to report); `Err` a symbol conflict.
    pub fn unify(&mut self, a: &Dim, b: &Dim, at: Span) -> Result<bool, Conflict> {
        match (self.resolve(a), self.resolve(b)) {
            (Dim::Known(x), Dim::Known(y)) => {
                if x == y {
                    return Ok(true);
                }
                // Report a conflict when one side was a symbol bound earlier.
                for original in [a, b] {
                    if let Dim::Symbol(s) = original {
                        if let Some((n, span)) = self.bound_at(s) {
                            let other = if n == x { y } else { x };
                            return Err(Conflict {
                                symbol: s.clone(),
                                first: n,
                                first_span: span,
                                second: other,
                            });
                        }
                    }
                }
                Ok(false)
            }
            (Dim::Symbol(s), Dim::Known(n)) | (Dim::Known(n), Dim::Symbol(s)) => {
                self.bindings.insert(s, Binding::Size(n, at));
                Ok(true)
            }
            (Dim::Symbol(s), Dim::Symbol(t)) => {
                if s != t {
                    self.bindings.insert(t, Binding::Alias(s));
                }
                Ok(true)
            }
        }
    }
}

/// A window (kernel or pool) that does not fit its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowTooLarge {
    /// The input size along the axis, padding included.
    pub input: usize,
    /// The smallest input the window fits.
    pub needed: usize,
}

/// Why a window size could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowError {
    TooLarge(WindowTooLarge),
    Overflow,
}

/// The output size of a sliding window along one axis (Keras, channels-last):
/// `same` → `ceil(in / stride)`; `valid` (or explicit padding `before + after` added to the
/// input) → `floor((in - dilation*(kernel-1) - 1) / stride) + 1`.
/// `axis` is 0 for height and 1 for width (it selects the explicit padding amounts).
pub fn window_output(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: &Padding,
    axis: usize,
) -> Result<usize, WindowError> {
    let stride = stride.max(1);
    match padding {
        Padding::Same => Ok(input.div_ceil(stride)),
        Padding::Valid | Padding::Explicit(_) => {
            let (before, after) = match padding {
                Padding::Explicit(p) if axis == 0 => (p[0], p[1]),
                Padding::Explicit(p) => (p[2], p[3]),
                _ => (0, 0),
            };
            let padded = input
                .checked_add(before)
                .and_then(|v| v.checked_add(after))
                .ok_or(WindowError::Overflow)?;
            let span = kernel
                .checked_sub(1)
                .and_then(|k| k.checked_mul(dilation))
                .and_then(|v| v.checked_add(1))
                .ok_or(WindowError::Overflow)?;
            if padded < span {
                return Err(WindowError::TooLarge(WindowTooLarge {
                    input: padded,
                    needed: span,
                }));
            }
            Ok((padded - span) / stride + 1)
        }
    }
}

/// The product of sizes, or `None` on overflow.
pub fn product(sizes: impl IntoIterator<Item = usize>) -> Option<usize> {
    sizes.into_iter().try_fold(1usize, usize::checked_mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(i: usize, k: usize, s: usize, d: usize) -> Result<usize, WindowError> {
        window_output(i, k, s, d, &Padding::Valid, 0)
    }

    // Expected values computed by hand from Keras's formulas:
    // valid: floor((in - d*(k-1) - 1)/s) + 1; same: ceil(in/s).
    #[test]
    fn valid_padding_by_hand() {
        assert_eq!(valid(28, 3, 1, 1), Ok(26));
        assert_eq!(valid(13, 3, 1, 1), Ok(11));
        assert_eq!(valid(26, 2, 2, 1), Ok(13)); // max_pool2d(2) after the first conv
        assert_eq!(valid(11, 2, 2, 1), Ok(5)); // floor(9/2)+1
        assert_eq!(valid(3, 2, 2, 1), Ok(1));
        assert_eq!(valid(7, 3, 2, 1), Ok(3)); // floor(4/2)+1
        assert_eq!(valid(8, 3, 2, 1), Ok(3)); // floor(5/2)+1
        assert_eq!(valid(9, 3, 1, 2), Ok(5)); // span 5: floor(4/1)+1
        assert_eq!(valid(5, 3, 1, 2), Ok(1));
        assert_eq!(valid(3, 3, 1, 1), Ok(1));
    }

    #[test]
    fn same_padding_with_stride_on_odd_inputs() {
        let same = |i, s| window_output(i, 3, s, 1, &Padding::Same, 0);
        assert_eq!(same(7, 2), Ok(4));
        assert_eq!(same(13, 2), Ok(7));
        assert_eq!(same(5, 3), Ok(2));
        assert_eq!(same(28, 1), Ok(28));
        assert_eq!(same(1, 2), Ok(1));
    }

    #[test]
    fn explicit_padding_adds_to_the_input() {
        let p = Padding::Explicit([1, 1, 2, 0]);
        assert_eq!(window_output(5, 3, 1, 1, &p, 0), Ok(5)); // 7 - 3 + 1
        assert_eq!(window_output(5, 3, 2, 1, &p, 1), Ok(3)); // 7: floor(4/2)+1
    }

    #[test]
    fn window_too_large_and_overflow() {
        assert_eq!(
            valid(1, 3, 1, 1),
            Err(WindowError::TooLarge(WindowTooLarge {
                input: 1,
                needed: 3
            }))
        );
        assert_eq!(
            valid(4, 3, 1, 2),
            Err(WindowError::TooLarge(WindowTooLarge {
                input: 4,
                needed: 5
            }))
        );
        assert_eq!(valid(4, usize::MAX, 1, 2), Err(WindowError::Overflow));
    }

    #[test]
    fn unification_binds_once_and_reports_conflicts() {
        let mut s = Symbols::default();
        let d = Dim::Symbol("D".into());
        assert_eq!(s.unify(&d, &Dim::Known(16), Span::new(1, 2)), Ok(true));
        assert_eq!(s.resolve(&d), Dim::Known(16));
        assert_eq!(s.unify(&Dim::Known(16), &d, Span::new(3, 4)), Ok(true));
        let err = s.unify(&d, &Dim::Known(32), Span::new(5, 6)).unwrap_err();
        assert_eq!(
            (err.first, err.second, err.first_span),
            (16, 32, Span::new(1, 2))
        );
        assert_eq!(
            s.unify(&Dim::Known(3), &Dim::Known(4), Span::default()),
            Ok(false)
        );
        // Aliases: M = N, then N = 8 makes M 8 too.
        let (m, n) = (Dim::Symbol("M".into()), Dim::Symbol("N".into()));
        assert_eq!(s.unify(&n, &m, Span::default()), Ok(true));
        assert_eq!(s.unify(&n, &Dim::Known(8), Span::default()), Ok(true));
        assert_eq!(s.resolve(&m), Dim::Known(8));
    }
}
