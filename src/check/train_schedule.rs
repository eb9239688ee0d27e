//! `schedule`: one learning-rate schedule, or a chain of them joined by `|>`
//! (`warmup(epochs: 2) |> cosine(epochs: 20, min_lr: 1e-5)`).
//!
//! Input: the `schedule` setting, the block's metrics (and where they were set) and what the
//! data pipeline yields (for `reduce_on_plateau`'s monitor). Output: the chain's links in order,
//! or diagnostics: an unknown schedule, its arguments, a link that lasts to the end of the run
//! placed before another link (E0508), and `reduce_on_plateau`'s monitor checked as early
//! stopping's (E0505).

use super::signature::{self as sig, float, int_min, kw, Default, Kind, Limit, Param, Signature};
use super::train::choice_in;
use super::train_fit::DataFacts;
use super::train_monitor::{
    check_monitor, check_validation, output_monitor, resolve_mode, without_monitor, MONITORS,
};
use super::train_types::{Metric, ReduceOnPlateau, Schedule};
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::syntax::ast::{Expr, ExprKind, Setting};

/// The options of `reduce_on_plateau` (Keras's `ReduceLROnPlateau` defaults).
pub const REDUCE_ON_PLATEAU: &[Param] = &[
    kw("monitor", Kind::Choice(MONITORS), Default::Name("val_loss")),
    kw(
        "factor",
        float(Limit::Excl(0.0), Limit::Excl(1.0)),
        Default::Float(0.1),
    ),
    kw("patience", int_min(0), Default::Int(10)),
    kw(
        "min_delta",
        float(Limit::Incl(0.0), Limit::None),
        Default::Float(1e-4),
    ),
    kw(
        "min_lr",
        float(Limit::Incl(0.0), Limit::None),
        Default::Float(0.0),
    ),
    kw("cooldown", int_min(0), Default::Int(0)),
    kw(
        "mode",
        Kind::Choice(&["auto", "min", "max"]),
        Default::Name("auto"),
    ),
];

/// Every learning-rate schedule with its options.
pub const SCHEDULES: &[(&str, &[Param])] = &[
    (
        "step",
        &[
            kw("every", int_min(1), Default::Required),
            kw(
                "factor",
                float(Limit::Excl(0.0), Limit::Incl(1.0)),
                Default::Float(0.5),
            ),
        ],
    ),
    (
        "exponential",
        &[
            kw(
                "rate",
                float(Limit::Excl(0.0), Limit::Incl(1.0)),
                Default::Required,
            ),
            kw("every", int_min(1), Default::Int(1)),
        ],
    ),
    (
        "cosine",
        &[
            kw("epochs", int_min(1), Default::Absent),
            kw(
                "min_lr",
                float(Limit::Incl(0.0), Limit::None),
                Default::Float(0.0),
            ),
        ],
    ),
    ("warmup", &[kw("epochs", int_min(1), Default::Required)]),
    ("reduce_on_plateau", REDUCE_ON_PLATEAU),
];

/// Checks a `schedule` setting: each link on its own, then their order. `metrics` are the
/// block's (with the span of the `metrics` setting, if written); `data` what the pipeline
/// yields, when it checked.
pub fn schedule(
    file: FileId,
    s: &Setting,
    metrics: Option<(&[Metric], Span)>,
    data: Option<&DataFacts>,
    outputs: &[String],
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Schedule>> {
    let (head, stages) = match s.args.as_slice() {
        [a] if a.name.is_none() => match &a.value.kind {
            ExprKind::Pipe { head, stages } => (head.as_ref(), stages.as_slice()),
            _ => (&a.value, &[][..]),
        },
        _ => {
            diags.push(
                Diagnostic::error(codes::CHECK_ARGUMENT_TYPE, "`schedule` takes one schedule")
                    .primary(file, s.span, "not a schedule or a chain of schedules")
                    .help("join schedules with `|>`: `warmup(epochs: 2) |> cosine(epochs: 20)`"),
            );
            return None;
        }
    };
    // A chain's stages are calls (the parser makes them so); each is checked as an expression.
    let stages = stages.iter().map(|call| Expr {
        kind: ExprKind::Call(call.clone()),
        span: call.span,
    });
    let mut out = Vec::new();
    let mut spans = Vec::new();
    let mut ok = true;
    for expr in std::iter::once(head.clone()).chain(stages) {
        match link(file, &expr, (metrics, data), outputs, diags) {
            Some(l) => {
                out.push(l);
                spans.push(expr.span);
            }
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    check_order(file, &out, &spans, diags).then_some(out)
}

/// E0508 at every link but the last that lasts to the end of the run.
fn check_order(
    file: FileId,
    links: &[Schedule],
    spans: &[Span],
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let mut ok = true;
    let last = links.len().saturating_sub(1);
    for (i, (l, span)) in links.iter().zip(spans).enumerate() {
        if i == last || l.epochs().is_some() {
            continue;
        }
        ok = false;
        let next = spans.get(i + 1).copied().unwrap_or(*span);
        let fix = match l {
            Schedule::Cosine { .. } => "give it `epochs:`, or move it to the end of the chain",
            _ => "move it to the end of the chain, or use a schedule with `epochs:` here",
        };
        diags.push(
            Diagnostic::error(
                codes::CHECK_SCHEDULE_CHAIN,
                "this schedule lasts to the end of the run, so no schedule can follow it",
            )
            .primary(file, *span, "has no `epochs:` to end after")
            .secondary(file, next, "so this schedule would never start")
            .note("in a chain `a |> b`, `b` starts when `a`'s epochs are over")
            .help(fix),
        );
    }
    ok
}

/// One link: `name` or `name(args)`, bound to its signature.
fn link(
    file: FileId,
    expr: &Expr,
    (metrics, data): (Option<(&[Metric], Span)>, Option<&DataFacts>),
    outputs: &[String],
    diags: &mut Vec<Diagnostic>,
) -> Option<Schedule> {
    let names: Vec<&str> = SCHEDULES.iter().map(|(n, _)| *n).collect();
    let (name, args, span) = choice_in(file, "schedule", expr, expr.span, &names, diags)?;
    // A model with several outputs may monitor a per-output value (`val_digit_loss`).
    let own = if name == "reduce_on_plateau" {
        output_monitor(file, "reduce_on_plateau", args, outputs, diags)?
    } else {
        None
    };
    let rest;
    let args = match &own {
        Some(_) => {
            rest = without_monitor(args);
            &rest
        }
        None => args,
    };
    let params = SCHEDULES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)?;
    let b = sig::bind(
        file,
        &Signature { params },
        &format!("schedule `{name}`"),
        args,
        span,
        diags,
    )?;
    let int = |k: &str| b.int(k).unsigned_abs();
    Some(match name {
        "step" => Schedule::Step {
            every: int("every"),
            factor: b.float("factor"),
        },
        "exponential" => Schedule::Exponential {
            rate: b.float("rate"),
            every: int("every"),
        },
        "cosine" => Schedule::Cosine {
            epochs: b.span("epochs").map(|_| int("epochs")),
            min_lr: b.float("min_lr"),
        },
        "warmup" => Schedule::Warmup {
            epochs: int("epochs"),
        },
        _ => {
            let (monitor, at) = match &own {
                Some((name, at)) => (name.clone(), Some(*at)),
                None => (b.name("monitor").to_string(), b.span("monitor")),
            };
            let written = if at.is_some() {
                "monitored here"
            } else {
                "`monitor` defaults to `val_loss`"
            };
            let at = at.unwrap_or(span);
            let logged = if own.is_some() {
                check_validation(
                    file,
                    "reduce_on_plateau",
                    &monitor,
                    (at, written),
                    data,
                    diags,
                )
            } else {
                check_monitor(
                    file,
                    "reduce_on_plateau",
                    &monitor,
                    (at, written),
                    metrics,
                    data,
                    diags,
                )
            };
            if !logged {
                return None;
            }
            Schedule::ReduceOnPlateau(ReduceOnPlateau {
                mode: resolve_mode(b.name("mode"), &monitor),
                monitor,
                factor: b.float("factor"),
                patience: int("patience"),
                min_delta: b.float("min_delta"),
                min_lr: b.float("min_lr"),
                cooldown: int("cooldown"),
            })
        }
    })
}
