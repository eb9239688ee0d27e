//! Symbolic dims and their unification, for the shape rules of multi-input layers and the
//! checker's cross-block checks.
//!
//! Input: dims of tensor facts, window parameters. Output: resolved dims, output sizes, or a
//! typed error saying why not. Invariants: all arithmetic is checked; a symbol is bound at most
//! once (a second, different size is a [`Conflict`] naming both places); alias chains are
//! followed a bounded number of steps.

use super::types::Dim;
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

#[cfg(test)]
mod tests {
    use super::*;

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
