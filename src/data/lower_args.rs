//! Argument binding and literal conversion for lowering `data` blocks.
//!
//! Input: AST arguments (positional and keyword) and the parameter list of the source, step or
//! setting they belong to. Output: one optional expression per parameter, and typed values
//! (sizes, fractions, strings, shapes) read from literal expressions. Every problem becomes an
//! E06xx diagnostic at the argument's span, pushed into the [`Ctx`]; getters then return `None`.

use crate::diag::codes::{
    DATA_ARGUMENT_RANGE, DATA_ARGUMENT_TYPE, DATA_DUPLICATE, DATA_MISSING_ARGUMENT,
    DATA_UNKNOWN_ARGUMENT,
};
use crate::diag::suggest::help_or_list;
use crate::diag::{Diagnostic, FileId, Span};
use crate::syntax::ast::{Arg, Expr, ExprKind};

/// `Some(None)` when absent, `Some(Some(v))` when valid, `None` when given but invalid.
#[allow(clippy::option_option)] // the three cases are exactly what `?` needs here
pub fn opt<T>(e: Option<&Expr>, read: impl FnOnce(&Expr) -> Option<T>) -> Option<Option<T>> {
    match e {
        None => Some(None),
        Some(e) => read(e).map(Some),
    }
}

/// The diagnostics sink of one lowering.
pub struct Ctx {
    pub file: FileId,
    pub diags: Vec<Diagnostic>,
}

/// Arguments bound to parameter names: `values[i]` belongs to `names[i]`.
pub struct Bound<'a> {
    names: &'static [&'static str],
    values: Vec<Option<&'a Expr>>,
    /// The span of the call or setting, for "missing argument" errors.
    span: Span,
    what: String,
}

impl<'a> Bound<'a> {
    /// The expression given for `name`, if any.
    pub fn get(&self, name: &str) -> Option<&'a Expr> {
        self.names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.values.get(i).copied().flatten())
    }

    /// The expression for `name`, or a "missing argument" error.
    pub fn require(&self, ctx: &mut Ctx, name: &str) -> Option<&'a Expr> {
        let found = self.get(name);
        if found.is_none() {
            ctx.error(
                Diagnostic::error(
                    DATA_MISSING_ARGUMENT,
                    format!("{} needs the argument `{name}`", self.what),
                )
                .primary(ctx.file, self.span, format!("`{name}` missing here")),
            );
        }
        found
    }
}

impl Ctx {
    pub fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn at(&mut self, code: crate::diag::Code, span: Span, message: String, label: &str) {
        let d = Diagnostic::error(code, message).primary(self.file, span, label);
        self.diags.push(d);
    }

    /// Binds `args` to `names`; the first `positional` names may be given by position.
    pub fn bind<'a>(
        &mut self,
        what: &str,
        span: Span,
        args: &'a [Arg],
        names: &'static [&'static str],
        positional: usize,
    ) -> Bound<'a> {
        let mut values: Vec<Option<&'a Expr>> = vec![None; names.len()];
        let mut next_pos = 0;
        for arg in args {
            let slot = match &arg.name {
                None => {
                    if next_pos >= positional {
                        self.at(
                            DATA_UNKNOWN_ARGUMENT,
                            arg.span,
                            format!("{what} takes {positional} positional argument(s)"),
                            "unexpected argument",
                        );
                        continue;
                    }
                    next_pos += 1;
                    next_pos - 1
                }
                Some(id) => {
                    if let Some(i) = names.iter().position(|n| *n == id.name) {
                        i
                    } else {
                        let d = Diagnostic::error(
                            DATA_UNKNOWN_ARGUMENT,
                            format!("{what} has no argument `{}`", id.name),
                        )
                        .primary(self.file, id.span, "unknown argument")
                        .help(help_or_list(&id.name, names));
                        self.diags.push(d);
                        continue;
                    }
                }
            };
            if values[slot].is_some() {
                self.at(
                    DATA_DUPLICATE,
                    arg.span,
                    format!("`{}` is given twice", names[slot]),
                    "given again here",
                );
                continue;
            }
            values[slot] = Some(&arg.value);
        }
        Bound {
            names,
            values,
            span,
            what: what.to_string(),
        }
    }

    fn wrong_type(&mut self, e: &Expr, name: &str, expected: &str) {
        self.at(
            DATA_ARGUMENT_TYPE,
            e.span,
            format!("`{name}` must be {expected}"),
            &format!("expected {expected}"),
        );
    }

    /// A whole number `>= min`.
    pub fn size(&mut self, e: &Expr, name: &str, min: u64) -> Option<usize> {
        let ExprKind::Number(n) = &e.kind else {
            self.wrong_type(e, name, "a whole number");
            return None;
        };
        let Some(v) = n.int else {
            self.wrong_type(e, name, "a whole number");
            return None;
        };
        if let Some(v) = u64::try_from(v).ok().filter(|&v| v >= min) {
            usize::try_from(v).ok().or_else(|| {
                self.at(
                    DATA_ARGUMENT_RANGE,
                    e.span,
                    format!("`{name}` is too large"),
                    "too large",
                );
                None
            })
        } else {
            self.at(
                DATA_ARGUMENT_RANGE,
                e.span,
                format!("`{name}` must be at least {min}, found {v}"),
                "out of range",
            );
            None
        }
    }

    /// A `u32` count `>= min` (classes, vocabulary).
    pub fn count32(&mut self, e: &Expr, name: &str, min: u64) -> Option<u32> {
        let v = self.size(e, name, min)?;
        u32::try_from(v).ok().or_else(|| {
            self.at(
                DATA_ARGUMENT_RANGE,
                e.span,
                format!("`{name}` must be below 2^32"),
                "too large",
            );
            None
        })
    }

    /// A non-negative integer seed.
    pub fn seed(&mut self, e: &Expr) -> Option<u64> {
        self.size(e, "seed", 0).map(|v| v as u64)
    }

    /// A finite number accepted by `ok`; `range` describes the accepted range for messages.
    pub fn number(
        &mut self,
        e: &Expr,
        name: &str,
        range: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Option<f64> {
        let ExprKind::Number(n) = &e.kind else {
            self.wrong_type(e, name, "a number");
            return None;
        };
        if n.value.is_finite() && ok(n.value) {
            Some(n.value)
        } else {
            self.at(
                DATA_ARGUMENT_RANGE,
                e.span,
                format!("`{name}` must be {range}, found {}", n.value),
                "out of range",
            );
            None
        }
    }

    /// A string literal.
    pub fn string(&mut self, e: &Expr, name: &str) -> Option<String> {
        if let ExprKind::Str(s) = &e.kind {
            Some(s.clone())
        } else {
            self.wrong_type(e, name, "a string");
            None
        }
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, e: &Expr, name: &str) -> Option<bool> {
        match &e.kind {
            ExprKind::Bool(b) => Some(*b),
            ExprKind::Name(id) if id.name == "true" || id.name == "false" => {
                Some(id.name == "true")
            }
            _ => {
                self.wrong_type(e, name, "true or false");
                None
            }
        }
    }

    /// A keyword value such as `class` or `value`, one of `allowed`.
    pub fn keyword(
        &mut self,
        e: &Expr,
        name: &str,
        allowed: &'static [&'static str],
    ) -> Option<&'static str> {
        let written = match &e.kind {
            ExprKind::Name(id) => id.name.as_str(),
            ExprKind::Str(s) => s.as_str(),
            _ => {
                self.wrong_type(e, name, &format!("one of {}", allowed.join(", ")));
                return None;
            }
        };
        if let Some(k) = allowed.iter().find(|k| **k == written) {
            return Some(k);
        }
        let d = Diagnostic::error(
            DATA_ARGUMENT_RANGE,
            format!(
                "`{name}` must be one of {}, found `{written}`",
                allowed.join(", ")
            ),
        )
        .primary(self.file, e.span, "not allowed here")
        .help(help_or_list(written, allowed));
        self.diags.push(d);
        None
    }

    /// A list of whole numbers `>= 1` (a shape).
    pub fn shape(&mut self, e: &Expr, name: &str) -> Option<Vec<usize>> {
        let ExprKind::List(items) = &e.kind else {
            self.wrong_type(e, name, "a list of sizes such as [28, 28, 1]");
            return None;
        };
        self.sizes(items, name, e.span)
    }

    /// Each of `items` as a size `>= 1`; `None` if any is wrong (all are reported).
    pub fn sizes(&mut self, items: &[Expr], name: &str, span: Span) -> Option<Vec<usize>> {
        let dims: Vec<Option<usize>> = items.iter().map(|d| self.size(d, name, 1)).collect();
        if items.is_empty() {
            self.diags.push(
                Diagnostic::error(
                    DATA_MISSING_ARGUMENT,
                    format!("`{name}` needs at least one size"),
                )
                .primary(self.file, span, "empty shape"),
            );
            return None;
        }
        dims.into_iter().collect()
    }
}
