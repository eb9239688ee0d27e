//! How layers get their names, which are also their weights' names (`LAYER.PARAM`).
//!
//! A layer's name is, in order of precedence: its `name: "..."` argument (Keras's `name=`), the
//! `let` binding it is bound to, or its kind numbered per model (`conv2d`, `conv2d_1`). A
//! written name is kept exactly, so renaming a `let` binding does not rename the weights; the
//! other two are made unique by a numeric suffix and never take a name written anywhere in
//! the model, even further down.
//!
//! Input: the model body (to reserve every written name up front) and each layer call as
//! written. Output: the call without its `name` argument, the chosen names, and diagnostics:
//! E0302 for a `name` that is not a string, E0216 for one that is not an identifier, E0215
//! for a name written twice. Cost: one visit of every expression of the body.

use super::Walker;
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::syntax::ast::{Call, Expr, ExprKind, Stmt};
use std::collections::HashMap;

/// What a layer's name comes from, strongest first.
#[derive(Clone, Copy)]
pub(super) enum Hint<'a> {
    /// `name: "..."`, kept as written.
    Written(&'a str),
    /// The `let` binding the layer's value is bound to.
    Let(&'a str),
    /// Nothing: the layer's kind, numbered.
    None,
}

/// Every name written with `name:` in the body, at its first place; a name written twice is
/// E0215, one that is not an identifier E0216 (and not reserved).
pub(super) fn reserve_written_names(
    file: FileId,
    body: &[Stmt],
    diags: &mut Vec<Diagnostic>,
) -> HashMap<String, Span> {
    let mut found = HashMap::new();
    let mut pending: Vec<&Expr> = body
        .iter()
        .map(|s| match s {
            Stmt::Let { value, .. } => value,
            Stmt::Expr(e) => e,
        })
        .collect();
    while let Some(expr) = pending.pop() {
        match &expr.kind {
            ExprKind::Call(call) => reserve_in_call(file, call, &mut pending, &mut found, diags),
            ExprKind::Pipe { head, stages } => {
                pending.push(head);
                for stage in stages {
                    reserve_in_call(file, stage, &mut pending, &mut found, diags);
                }
            }
            ExprKind::List(items) | ExprKind::Tuple(items) => pending.extend(items.iter()),
            ExprKind::Number(_) | ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Name(_) => {}
        }
    }
    found
}

/// Reserves the name written in `call`'s arguments and queues its other arguments.
fn reserve_in_call<'a>(
    file: FileId,
    call: &'a Call,
    pending: &mut Vec<&'a Expr>,
    found: &mut HashMap<String, Span>,
    diags: &mut Vec<Diagnostic>,
) {
    for arg in &call.args {
        let is_name = arg.name.as_ref().is_some_and(|n| n.name == "name");
        match &arg.value.kind {
            ExprKind::Str(s) if is_name => {
                if !is_identifier(s) {
                    continue;
                }
                if let Some(first) = found.get(s) {
                    diags.push(
                        Diagnostic::error(
                            codes::CHECK_DUPLICATE_LAYER_NAME,
                            format!("two layers are named `{s}`"),
                        )
                        .primary(file, arg.value.span, "named again here")
                        .secondary(file, *first, "first named here")
                        .note("a layer's name is also its weights' name (`NAME.kernel`), so it must be unique in its model")
                        .help("give each layer its own name"),
                    );
                } else {
                    found.insert(s.clone(), arg.value.span);
                }
            }
            _ => pending.push(&arg.value),
        }
    }
}

/// Takes `name:` out of `call`: the call without it and the written name, if it is a valid
/// one (an invalid one is reported here and the layer falls back to its other names).
pub(super) fn take_name(
    file: FileId,
    call: &Call,
    diags: &mut Vec<Diagnostic>,
) -> Option<(Call, Option<String>)> {
    let at = call
        .args
        .iter()
        .position(|a| a.name.as_ref().is_some_and(|n| n.name == "name"))?;
    let mut stripped = call.clone();
    let arg = stripped.args.remove(at);
    let name = match arg.value.kind {
        ExprKind::Str(s) if is_identifier(&s) => Some(s),
        ExprKind::Str(s) => {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_INVALID_LAYER_NAME,
                    format!("`{}` cannot name a layer", s.escape_debug()),
                )
                .primary(file, arg.value.span, "not an identifier")
                .note("a layer's name is also its weights' name (`NAME.kernel`) and its attribute in an exported PyTorch module")
                .help("use letters, digits and `_`, starting with a letter or `_`, e.g. `name: \"stem\"`"),
            );
            None
        }
        _ => {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_ARGUMENT_TYPE,
                    "argument `name` of a layer must be a string",
                )
                .primary(file, arg.value.span, "not a string")
                .note("expected a string such as \"stem\""),
            );
            None
        }
    };
    Some((stripped, name))
}

/// Whether `s` is an identifier: ASCII letters, digits and `_`, not starting with a digit.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Walker<'_> {
    /// The name of a new layer of `kind` (see the module doc for the order).
    pub(super) fn next_name(&mut self, kind: &'static str, hint: Hint<'_>) -> String {
        match hint {
            Hint::Written(name) => {
                self.taken_names.insert(name.to_string());
                name.to_string()
            }
            Hint::Let(h) => {
                let mut name = h.to_string();
                let mut k = 0usize;
                while self.is_taken(&name) {
                    k += 1;
                    name = format!("{h}_{k}");
                }
                self.taken_names.insert(name.clone());
                name
            }
            Hint::None => loop {
                let count = self.kind_counts.entry(kind).or_insert(0);
                let name = if *count == 0 {
                    kind.to_string()
                } else {
                    format!("{kind}_{count}")
                };
                *count += 1;
                if !self.is_taken(&name) {
                    self.taken_names.insert(name.clone());
                    return name;
                }
            },
        }
    }

    fn is_taken(&self, name: &str) -> bool {
        self.taken_names.contains(name) || self.written_names.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::is_identifier;

    #[test]
    fn identifiers_are_ascii_words_not_starting_with_a_digit() {
        for ok in ["stem", "_x", "conv2d_1", "Block3"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1st", "a.b", "a b", "stem-2", "é"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
