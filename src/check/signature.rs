//! Binding written arguments to declared signatures (declared in `ops::signature`).
//!
//! Input: a [`Signature`] (positional/keyword parameters, kinds, ranges, Keras defaults) and the
//! arguments written in the spec. Output: [`BoundArgs`] with every parameter resolved (written
//! or defaulted), or diagnostics at the offending argument's span. Invariant: `bind` returns
//! `Some` only when every argument was valid, so the getters of `BoundArgs` never see a value
//! of the wrong kind (they still fall back to a neutral value instead of panicking).

use crate::diag::suggest;
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::syntax::ast::{Arg, Expr, ExprKind};

pub use crate::ops::signature::{
    float, int_min, kw, pos, BoundArgs, Default, Kind, Limit, Param, Signature, Value, MAX_SIZE,
};

/// Binds `args` to `sig`, reporting every problem. `what` names the callee in messages
/// (``"`conv2d`"``); `call_span` is where a missing argument is reported.
pub fn bind(
    file: FileId,
    sig: &Signature,
    what: &str,
    args: &[Arg],
    call_span: Span,
    diags: &mut Vec<Diagnostic>,
) -> Option<BoundArgs> {
    let before = diags.len();
    let mut given: Vec<Option<(&Expr, Span)>> = vec![None; sig.params.len()];
    let mut next_positional = 0usize;
    for arg in args {
        let index = if let Some(key) = &arg.name {
            let found = sig
                .params
                .iter()
                .position(|p| p.name == key.name || p.aliases.contains(&key.name.as_str()));
            let Some(i) = found else {
                let names = sig.params.iter().map(|p| p.name);
                let mut d = Diagnostic::error(
                    codes::CHECK_UNKNOWN_ARGUMENT,
                    format!("{what} has no argument `{}`", key.name),
                )
                .primary(file, key.span, "unknown argument");
                if let Some(h) = suggest::help_for(&key.name, names, "its arguments are") {
                    d = d.help(h);
                }
                diags.push(d);
                continue;
            };
            i
        } else {
            let positional: Vec<usize> = (0..sig.params.len())
                .filter(|&i| sig.params.get(i).is_some_and(|p| p.positional))
                .collect();
            let Some(&i) = positional.get(next_positional) else {
                diags.push(
                    Diagnostic::error(
                        codes::CHECK_TOO_MANY_ARGUMENTS,
                        format!(
                            "{what} takes {} positional argument{}",
                            positional.len(),
                            if positional.len() == 1 { "" } else { "s" }
                        ),
                    )
                    .primary(file, arg.span, "extra argument"),
                );
                next_positional += 1;
                continue;
            };
            next_positional += 1;
            i
        };
        let Some(slot) = given.get_mut(index) else {
            continue;
        };
        if let Some((_, first)) = slot {
            let name = sig.params.get(index).map_or("", |p| p.name);
            diags.push(
                Diagnostic::error(
                    codes::CHECK_DUPLICATE_ARGUMENT,
                    format!("argument `{name}` of {what} is given twice"),
                )
                .primary(file, arg.span, "given again here")
                .secondary(file, *first, "first given here"),
            );
            continue;
        }
        *slot = Some((&arg.value, arg.span));
    }
    let mut values = Vec::with_capacity(sig.params.len());
    for (param, slot) in sig.params.iter().zip(&given) {
        #[allow(clippy::single_match_else)] // both arms are substantial
        let value = match slot {
            Some((expr, span)) => {
                let v = convert(file, param, what, expr, diags);
                (param.name, v.unwrap_or(Value::Absent), Some(*span))
            }
            None => {
                let v = match param.default {
                    Default::Required => {
                        diags.push(
                            Diagnostic::error(
                                codes::CHECK_MISSING_ARGUMENT,
                                format!("{what} needs the argument `{}`", param.name),
                            )
                            .primary(file, call_span, format!("`{}` is missing", param.name))
                            .help(format!(
                                "write it as `{}: {}`",
                                param.name,
                                kind_example(param.kind)
                            )),
                        );
                        Value::Absent
                    }
                    Default::Int(i) => Value::Int(i),
                    Default::Float(f) => Value::Float(f),
                    Default::Bool(b) => Value::Bool(b),
                    Default::Name(n) => Value::Name(n.to_string()),
                    Default::Absent => Value::Absent,
                };
                (param.name, v, None)
            }
        };
        values.push(value);
    }
    (diags.len() == before).then_some(BoundArgs::new(values))
}

fn kind_example(kind: Kind) -> String {
    match kind {
        Kind::Int { min, .. } => min.max(1).to_string(),
        Kind::Float { .. } => "0.1".into(),
        Kind::Bool => "true".into(),
        Kind::Choice(c) => c.first().copied().unwrap_or("...").into(),
        Kind::Pair => "3".into(),
        Kind::Padding => "same".into(),
        Kind::Str => "\"...\"".into(),
        Kind::Layer(names) => format!("{}(32)", names.first().copied().unwrap_or("lstm")),
    }
}

fn describe(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Number(n) => match n.int {
            Some(i) => format!("the integer {i}"),
            None => format!("the number {}", n.value),
        },
        ExprKind::Str(s) => format!("the string \"{s}\""),
        ExprKind::Bool(b) => format!("`{b}`"),
        ExprKind::Name(n) => format!("the name `{}`", n.name),
        ExprKind::List(_) => "a list".into(),
        ExprKind::Tuple(_) => "a tuple".into(),
        ExprKind::Call(c) => format!("a call of `{}`", c.callee.name),
        ExprKind::Pipe { .. } => "a pipe".into(),
    }
}

/// "argument `lr` of optimizer `adam`", or just "`epochs`" for a one-value setting.
fn subject(what: &str, param: &Param) -> String {
    if what.trim_matches('`') == param.name {
        what.to_string()
    } else {
        format!("argument `{}` of {what}", param.name)
    }
}

fn type_error(file: FileId, what: &str, param: &Param, expr: &Expr, expected: &str) -> Diagnostic {
    Diagnostic::error(
        codes::CHECK_ARGUMENT_TYPE,
        format!("{} must be {expected}", subject(what, param)),
    )
    .primary(file, expr.span, format!("found {}", describe(expr)))
    .note(format!("expected {expected}"))
}

fn range_error(
    file: FileId,
    what: &str,
    param: &Param,
    span: Span,
    found: &str,
    expected: &str,
) -> Diagnostic {
    Diagnostic::error(
        codes::CHECK_ARGUMENT_RANGE,
        format!("{} is out of range", subject(what, param)),
    )
    .primary(file, span, format!("{found} is out of range"))
    .note(format!("expected {expected}, found {found}"))
}

fn limits_text(lo: Limit, hi: Limit) -> String {
    let lo_text = match lo {
        Limit::None => None,
        Limit::Incl(v) => Some(format!(">= {v}")),
        Limit::Excl(v) => Some(format!("> {v}")),
    };
    let hi_text = match hi {
        Limit::None => None,
        Limit::Incl(v) => Some(format!("<= {v}")),
        Limit::Excl(v) => Some(format!("< {v}")),
    };
    match (lo_text, hi_text) {
        (Some(a), Some(b)) => format!("a number {a} and {b}"),
        (Some(a), None) | (None, Some(a)) => format!("a number {a}"),
        (None, None) => "a finite number".into(),
    }
}

fn within(v: f64, lo: Limit, hi: Limit) -> bool {
    let lo_ok = match lo {
        Limit::None => true,
        Limit::Incl(l) => v >= l,
        Limit::Excl(l) => v > l,
    };
    let hi_ok = match hi {
        Limit::None => true,
        Limit::Incl(h) => v <= h,
        Limit::Excl(h) => v < h,
    };
    v.is_finite() && lo_ok && hi_ok
}

fn int_text(min: i64, max: i64) -> String {
    match (min, max) {
        (1, i64::MAX) => "a positive integer".into(),
        (0, i64::MAX) => "a non-negative integer".into(),
        (m, i64::MAX) => format!("an integer of at least {m}"),
        (m, x) => format!("an integer from {m} to {x}"),
    }
}

/// An integer literal's value, or a type error.
fn expect_int(
    file: FileId,
    what: &str,
    param: &Param,
    expr: &Expr,
    min: i64,
    max: i64,
) -> Result<i64, Diagnostic> {
    let ExprKind::Number(n) = &expr.kind else {
        return Err(type_error(file, what, param, expr, &int_text(min, max)));
    };
    let Some(i) = n.int else {
        return Err(type_error(file, what, param, expr, &int_text(min, max)));
    };
    if i < min || i > max {
        return Err(range_error(
            file,
            what,
            param,
            expr.span,
            &i.to_string(),
            &int_text(min, max),
        ));
    }
    Ok(i)
}

fn convert(
    file: FileId,
    param: &Param,
    what: &str,
    expr: &Expr,
    diags: &mut Vec<Diagnostic>,
) -> Option<Value> {
    let result = match param.kind {
        Kind::Int { min, max } => expect_int(file, what, param, expr, min, max).map(Value::Int),
        Kind::Float { lo, hi } => match &expr.kind {
            ExprKind::Number(n) if within(n.value, lo, hi) => Ok(Value::Float(n.value)),
            ExprKind::Number(n) => Err(range_error(
                file,
                what,
                param,
                expr.span,
                &n.value.to_string(),
                &limits_text(lo, hi),
            )),
            _ => Err(type_error(file, what, param, expr, "a number")),
        },
        Kind::Bool => match &expr.kind {
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            _ => Err(type_error(file, what, param, expr, "`true` or `false`")),
        },
        Kind::Str => match &expr.kind {
            ExprKind::Str(s) => Ok(Value::Str(s.clone())),
            _ => Err(type_error(file, what, param, expr, "a string")),
        },
        Kind::Choice(choices) => choice(file, what, param, expr, choices).map(Value::Name),
        Kind::Pair => pair(file, what, param, expr),
        Kind::Padding => padding(file, what, param, expr),
        Kind::Layer(names) => return layer_call(file, what, param, expr, names, diags),
    };
    match result {
        Ok(v) => Some(v),
        Err(d) => {
            diags.push(d);
            None
        }
    }
}

/// A call of one of the layers `names` (the layer a wrapper wraps), bound to that layer's own
/// signature; its problems are reported at its arguments.
fn layer_call(
    file: FileId,
    what: &str,
    param: &Param,
    expr: &Expr,
    names: &[&'static str],
    diags: &mut Vec<Diagnostic>,
) -> Option<Value> {
    let expected = format!(
        "a call of {}",
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let ExprKind::Call(call) = &expr.kind else {
        diags.push(type_error(file, what, param, expr, &expected));
        return None;
    };
    let spec = names
        .contains(&call.callee.name.as_str())
        .then(|| crate::ops::layer::lookup(&call.callee.name))
        .flatten();
    let Some(spec) = spec else {
        let mut d = type_error(file, what, param, expr, &expected);
        if let Some(c) = suggest::closest(&call.callee.name, names.iter().copied()) {
            d = d.help(format!("did you mean `{c}`?"));
        }
        diags.push(d);
        return None;
    };
    let inner = format!("`{}`", spec.name);
    let bound = bind(file, &spec.signature, &inner, &call.args, call.span, diags)?;
    Some(Value::Layer(Box::new((spec.name.to_string(), bound))))
}

/// A bare name from `choices`, or an error with a suggestion.
pub fn choice(
    file: FileId,
    what: &str,
    param: &Param,
    expr: &Expr,
    choices: &[&'static str],
) -> Result<String, Diagnostic> {
    let one_of = format!("one of {}", choices.join(", "));
    let ExprKind::Name(n) = &expr.kind else {
        return Err(type_error(file, what, param, expr, &one_of));
    };
    if choices.contains(&n.name.as_str()) {
        return Ok(n.name.clone());
    }
    let mut d = Diagnostic::error(
        codes::CHECK_UNKNOWN_CHOICE,
        format!(
            "unknown value `{}` for argument `{}` of {what}",
            n.name, param.name
        ),
    )
    .primary(file, n.span, "not a known value")
    .note(format!("expected {one_of}"));
    if let Some(c) = suggest::closest(&n.name, choices.iter().copied()) {
        d = d.help(format!("did you mean `{c}`?"));
    }
    Err(d)
}

fn pair(file: FileId, what: &str, param: &Param, expr: &Expr) -> Result<Value, Diagnostic> {
    let size = |e: &Expr| expect_int(file, what, param, e, 1, MAX_SIZE).map(|i| i as usize);
    #[allow(clippy::single_match_else)] // a list, or one size for both axes
    match &expr.kind {
        ExprKind::List(items) => match items.as_slice() {
            [a, b] => Ok(Value::Pair(size(a)?, size(b)?)),
            _ => Err(type_error(
                file,
                what,
                param,
                expr,
                "a positive integer or a list of two",
            )),
        },
        _ => {
            let n = size(expr)?;
            Ok(Value::Pair(n, n))
        }
    }
}

fn padding(file: FileId, what: &str, param: &Param, expr: &Expr) -> Result<Value, Diagnostic> {
    use crate::check::types::Padding;
    let amount =
        |e: &Expr| expect_int(file, what, param, e, 0, i64::from(u16::MAX)).map(|i| i as usize);
    match &expr.kind {
        ExprKind::Name(_) => {
            let name = choice(file, what, param, expr, &["valid", "same"])?;
            Ok(Value::Padding(if name == "same" {
                Padding::Same
            } else {
                Padding::Valid
            }))
        }
        ExprKind::List(items) => match items.as_slice() {
            [h, w] => {
                let (h, w) = (amount(h)?, amount(w)?);
                Ok(Value::Padding(Padding::Explicit([h, h, w, w])))
            }
            [t, b, l, r] => Ok(Value::Padding(Padding::Explicit([
                amount(t)?,
                amount(b)?,
                amount(l)?,
                amount(r)?,
            ]))),
            _ => Err(type_error(
                file,
                what,
                param,
                expr,
                "`valid`, `same`, `[h, w]` or `[top, bottom, left, right]`",
            )),
        },
        _ => Err(type_error(
            file,
            what,
            param,
            expr,
            "`valid`, `same`, `[h, w]` or `[top, bottom, left, right]`",
        )),
    }
}
