//! Lowering: a `data` block's AST → a [`PipelineSpec`].
//!
//! Input: one [`ast::DataDef`]. Output: the typed spec when the block has no errors, and every
//! problem found (unknown names with "did you mean", missing, mistyped or out-of-range
//! arguments), each an E06xx diagnostic at the offending span. No file is opened here.

use super::lower_args::{opt, Ctx};
use super::lower_inputs::{
    attach_steps, lower_inputs_line, misplaced, resolve, step_group, NamedSteps,
};
use super::lower_source::lower_source;
pub use super::lower_source::SOURCES;
use super::spec::{Augment, Batch, PipelineSpec, Shuffle, Split, Step, Transform};
use crate::diag::codes::{
    DATA_ARGUMENT_RANGE, DATA_ARGUMENT_TYPE, DATA_DUPLICATE, DATA_MISSING_ARGUMENT,
    DATA_UNKNOWN_SETTING, DATA_UNKNOWN_STEP,
};
use crate::diag::suggest::help_or_list;
use crate::diag::{Diagnostic, FileId, Span};
use crate::syntax::ast::{self, Call, Expr, ExprKind, Setting};

/// The settings a data block accepts (experiments vary them as `data.` + the keyword).
pub const SETTINGS: &[&str] = &[
    "source", "map", "augment", "split", "shuffle", "batch", "seed", "inputs",
];
/// The transforms `map` accepts.
pub const TRANSFORMS: &[&str] = &[
    "standardize",
    "normalize",
    "scale",
    "one_hot",
    "reshape",
    "resize",
    "moving_average",
    "window",
    "pad",
];
/// The augmentations `augment` accepts.
pub const AUGMENTS: &[&str] = &["flip", "rotate", "zoom", "crop", "noise"];

/// Lowers one `data` block. The spec is `Some` exactly when no error was found.
pub fn lower_data_def(file: FileId, def: &ast::DataDef) -> (Option<PipelineSpec>, Vec<Diagnostic>) {
    let mut ctx = Ctx {
        file,
        diags: Vec::new(),
    };
    let mut seen: Vec<(&str, Span)> = Vec::new();
    let mut source = None;
    let mut preprocess = Vec::new();
    let mut augment = Vec::new();
    let mut split = None;
    let mut shuffle_seed: Option<(Option<u64>, Span)> = None;
    let mut batch = None;
    let mut seed = None;
    let mut inputs = None;
    let mut named = Vec::new();
    let mut unnamed: Vec<(Span, &'static str)> = Vec::new();
    for setting in &def.settings {
        let key = setting.key.name.as_str();
        if !SETTINGS.contains(&key) {
            ctx.error(
                Diagnostic::error(
                    DATA_UNKNOWN_SETTING,
                    format!("unknown data setting `{key}`"),
                )
                .primary(file, setting.key.span, "not a data setting")
                .help(help_or_list(key, SETTINGS)),
            );
            continue;
        }
        if key != "map" && key != "augment" {
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                ctx.error(
                    Diagnostic::error(DATA_DUPLICATE, format!("`{key}` is set twice"))
                        .primary(file, setting.span, "set again here")
                        .secondary(file, *first, "first set here"),
                );
                continue;
            }
            seen.push((key, setting.span));
        }
        match key {
            "source" => source = lower_source(&mut ctx, setting),
            "map" => {
                let mut steps = Vec::new();
                for call in pipeline_calls(&mut ctx, setting) {
                    if let Some(op) = lower_transform(&mut ctx, call) {
                        steps.push(Step {
                            op,
                            span: call.span,
                        });
                    }
                }
                if let Some(group) = step_group(setting) {
                    named.push((group, NamedSteps::Map(steps)));
                } else {
                    unnamed.push((setting.span, "map"));
                    preprocess.extend(steps);
                }
            }
            "augment" => {
                let mut steps = Vec::new();
                for call in pipeline_calls(&mut ctx, setting) {
                    if let Some(op) = lower_augment(&mut ctx, call) {
                        steps.push(Step {
                            op,
                            span: call.span,
                        });
                    }
                }
                if let Some(group) = step_group(setting) {
                    named.push((group, NamedSteps::Augment(steps)));
                } else {
                    unnamed.push((setting.span, "augment"));
                    augment.extend(steps);
                }
            }
            "inputs" => inputs = Some((lower_inputs_line(&mut ctx, setting), setting.span)),
            "split" => split = lower_split(&mut ctx, setting),
            "shuffle" => {
                let b = ctx.bind("shuffle", setting.span, &setting.args, &["seed"], 1);
                shuffle_seed = Some((b.get("seed").and_then(|e| ctx.seed(e)), setting.span));
            }
            "batch" => batch = lower_batch(&mut ctx, setting),
            _ => {
                let b = ctx.bind("seed", setting.span, &setting.args, &["seed"], 1);
                seed = b.require(&mut ctx, "seed").and_then(|e| ctx.seed(e));
            }
        }
    }
    for (key, present) in [("source", source.is_some()), ("batch", batch.is_some())] {
        if !present && !seen.iter().any(|(k, _)| *k == key) {
            ctx.error(
                Diagnostic::error(
                    DATA_MISSING_ARGUMENT,
                    format!("data block `{}` has no `{key}` line", def.name.name),
                )
                .primary(
                    file,
                    def.name.span,
                    format!("`{key}` missing in this block"),
                ),
            );
        }
    }
    let seed = seed.unwrap_or(0);
    let mut groups = Vec::new();
    match inputs {
        Some((decls, line)) => {
            for &(span, key) in &unnamed {
                misplaced(&mut ctx, span, true, key);
            }
            if let Some(source) = source.as_mut() {
                if let Some(mut resolved) = resolve(&mut ctx, &decls, source, line) {
                    attach_steps(&mut ctx, &mut resolved, named);
                    groups = resolved;
                }
            }
        }
        None => {
            for ((_, span), steps) in &named {
                let key = match steps {
                    NamedSteps::Map(_) => "map",
                    NamedSteps::Augment(_) => "augment",
                };
                misplaced(&mut ctx, *span, false, key);
            }
        }
    }
    let spec = match (source, batch) {
        (Some(source), Some(batch)) if ctx.diags.is_empty() => Some(PipelineSpec {
            name: def.name.name.clone(),
            span: def.span,
            source,
            preprocess,
            augment,
            split,
            shuffle: shuffle_seed.map(|(s, span)| Shuffle {
                seed: s.unwrap_or(seed),
                span,
            }),
            batch,
            seed,
            inputs: groups,
        }),
        _ => None,
    };
    (spec, ctx.diags)
}

/// The calls of a `map`/`augment` line: `f()` or `f() |> g() |> ...`.
fn pipeline_calls<'a>(ctx: &mut Ctx, setting: &'a Setting) -> Vec<&'a Call> {
    let mut calls = Vec::new();
    let mut values = setting.args.iter();
    let Some(first) = values.next() else {
        ctx.error(
            Diagnostic::error(
                DATA_MISSING_ARGUMENT,
                format!("`{}` needs at least one step", setting.key.name),
            )
            .primary(ctx.file, setting.span, "no step here"),
        );
        return calls;
    };
    for extra in values {
        ctx.error(
            Diagnostic::error(
                DATA_ARGUMENT_TYPE,
                format!("`{}` takes one chain of steps", setting.key.name),
            )
            .primary(ctx.file, extra.span, "chain steps with `|>`"),
        );
    }
    match &first.value.kind {
        ExprKind::Call(c) => calls.push(c),
        ExprKind::Pipe { head, stages } => {
            if let ExprKind::Call(c) = &head.kind {
                calls.push(c);
            } else {
                not_a_step(ctx, head);
            }
            calls.extend(stages.iter());
        }
        _ => not_a_step(ctx, &first.value),
    }
    calls
}

fn not_a_step(ctx: &mut Ctx, e: &Expr) {
    ctx.error(
        Diagnostic::error(
            DATA_ARGUMENT_TYPE,
            "expected a pipeline step such as `scale(1/255)`",
        )
        .primary(ctx.file, e.span, "not a step"),
    );
}

fn lower_transform(ctx: &mut Ctx, call: &Call) -> Option<Transform> {
    let name = call.callee.name.as_str();
    let span = call.span;
    let args = &call.args;
    Some(match name {
        "standardize" | "normalize" => {
            ctx.bind(name, span, args, &[], 0);
            if name == "standardize" {
                Transform::Standardize { fitted: None }
            } else {
                Transform::Normalize { fitted: None }
            }
        }
        "scale" => {
            let b = ctx.bind(name, span, args, &["factor", "offset"], 1);
            let arg = b.require(ctx, "factor")?;
            let factor = ctx.number(arg, "factor", "finite", |_| true)?;
            let offset = match b.get("offset") {
                Some(e) => ctx.number(e, "offset", "finite", |_| true)?,
                None => 0.0,
            };
            Transform::Scale { factor, offset }
        }
        "one_hot" => {
            let b = ctx.bind(name, span, args, &["classes"], 1);
            let classes = opt(b.get("classes"), |e| ctx.count32(e, "classes", 1))?;
            Transform::OneHot { classes }
        }
        "reshape" => {
            let items: Vec<Expr> = match args.as_slice() {
                [a] if a.name.is_none() && matches!(a.value.kind, ExprKind::List(_)) => {
                    let ExprKind::List(items) = &a.value.kind else {
                        return None;
                    };
                    items.clone()
                }
                _ => {
                    if let Some(kw) = args.iter().find(|a| a.name.is_some()) {
                        ctx.bind(name, span, std::slice::from_ref(kw), &[], 0);
                        return None;
                    }
                    args.iter().map(|a| a.value.clone()).collect()
                }
            };
            Transform::Reshape {
                shape: ctx.sizes(&items, "reshape", span)?,
            }
        }
        "resize" => {
            let b = ctx.bind(name, span, args, &["height", "width"], 2);
            let h = b
                .require(ctx, "height")
                .and_then(|e| ctx.size(e, "height", 1));
            let w = b
                .require(ctx, "width")
                .and_then(|e| ctx.size(e, "width", 1));
            Transform::Resize {
                height: h?,
                width: w?,
            }
        }
        "moving_average" => {
            let b = ctx.bind(name, span, args, &["window"], 1);
            let arg = b.require(ctx, "window")?;
            let window = ctx.size(arg, "window", 1)?;
            Transform::MovingAverage { window }
        }
        "window" => {
            let b = ctx.bind(name, span, args, &["size", "horizon"], 1);
            let arg = b.require(ctx, "size")?;
            let size = ctx.size(arg, "size", 1)?;
            let horizon = opt(b.get("horizon"), |e| ctx.size(e, "horizon", 1))?.unwrap_or(1);
            Transform::Window { size, horizon }
        }
        "pad" => {
            let b = ctx.bind(name, span, args, &["length", "value"], 1);
            let arg = b.require(ctx, "length")?;
            let length = ctx.size(arg, "length", 1)?;
            let value = opt(b.get("value"), |e| ctx.size(e, "value", 0))?.unwrap_or(0);
            Transform::Pad {
                length,
                value: i64::try_from(value).unwrap_or(i64::MAX),
            }
        }
        _ => {
            unknown_step(ctx, call, TRANSFORMS, AUGMENTS, "map", "augment");
            return None;
        }
    })
}

fn unknown_step(
    ctx: &mut Ctx,
    call: &Call,
    here: &[&str],
    other: &[&str],
    here_key: &str,
    other_key: &str,
) {
    let name = call.callee.name.as_str();
    let d = if other.contains(&name) {
        Diagnostic::error(
            DATA_UNKNOWN_STEP,
            format!("`{name}` is an `{other_key}` step, not a `{here_key}` step"),
        )
        .primary(
            ctx.file,
            call.callee.span,
            format!("not allowed under `{here_key}`"),
        )
        .help(format!("move it to an `{other_key}` line"))
    } else {
        Diagnostic::error(
            DATA_UNKNOWN_STEP,
            format!("unknown `{here_key}` step `{name}`"),
        )
        .primary(ctx.file, call.callee.span, "unknown step")
        .help(help_or_list(name, here))
    };
    ctx.error(d);
}

fn lower_augment(ctx: &mut Ctx, call: &Call) -> Option<Augment> {
    let name = call.callee.name.as_str();
    let span = call.span;
    let args = &call.args;
    Some(match name {
        "flip" => {
            let b = ctx.bind(name, span, args, &["horizontal", "vertical", "p"], 0);
            let horizontal = opt(b.get("horizontal"), |e| ctx.boolean(e, "horizontal"))?;
            let vertical = opt(b.get("vertical"), |e| ctx.boolean(e, "vertical"))?;
            let p = match b.get("p") {
                Some(e) => ctx.number(e, "p", "between 0 and 1", |v| (0.0..=1.0).contains(&v))?,
                None => 0.5,
            };
            Augment::Flip {
                horizontal: horizontal.unwrap_or(vertical.is_none()),
                vertical: vertical.unwrap_or(false),
                p,
            }
        }
        "rotate" => {
            let b = ctx.bind(name, span, args, &["degrees"], 1);
            let e = b.require(ctx, "degrees")?;
            let degrees = ctx.number(e, "degrees", "in (0, 180]", |v| v > 0.0 && v <= 180.0)?;
            Augment::Rotate { degrees }
        }
        "zoom" => {
            let b = ctx.bind(name, span, args, &["range"], 1);
            let e = b.require(ctx, "range")?;
            let range = ctx.number(e, "range", "in (0, 1)", |v| v > 0.0 && v < 1.0)?;
            Augment::Zoom { range }
        }
        "crop" => {
            let b = ctx.bind(name, span, args, &["size", "padding"], 1);
            let arg = b.require(ctx, "size")?;
            let size = ctx.size(arg, "size", 1)?;
            let padding = opt(b.get("padding"), |e| ctx.size(e, "padding", 0))?.unwrap_or(0);
            Augment::Crop { size, padding }
        }
        "noise" => {
            let b = ctx.bind(name, span, args, &["std"], 1);
            let e = b.require(ctx, "std")?;
            let std = ctx.number(e, "std", "greater than 0", |v| v > 0.0)?;
            Augment::Noise { std }
        }
        _ => {
            unknown_step(ctx, call, AUGMENTS, TRANSFORMS, "augment", "map");
            return None;
        }
    })
}

fn lower_split(ctx: &mut Ctx, setting: &Setting) -> Option<Split> {
    let b = ctx.bind(
        "split",
        setting.span,
        &setting.args,
        &["validation", "test", "stratify", "seed"],
        1,
    );
    let fraction = |ctx: &mut Ctx, name: &str| {
        opt(b.get(name), |e| {
            ctx.number(e, name, "strictly between 0 and 1", |v| v > 0.0 && v < 1.0)
        })
    };
    let (validation, test) = if b.get("test").is_some() {
        (fraction(ctx, "validation"), fraction(ctx, "test"))
    } else {
        // Without a test split, the validation fraction is what `split` is for.
        let e = b.require(ctx, "validation")?;
        let v = ctx.number(e, "validation", "strictly between 0 and 1", |v| {
            v > 0.0 && v < 1.0
        });
        (v.map(Some), Some(None))
    };
    let stratify = opt(b.get("stratify"), |e| ctx.boolean(e, "stratify"))?.unwrap_or(false);
    let seed = opt(b.get("seed"), |e| ctx.seed(e))?.unwrap_or(0);
    let (validation, test) = (validation?.unwrap_or(0.0), test?.unwrap_or(0.0));
    if validation + test >= 1.0 {
        ctx.error(
            Diagnostic::error(
                DATA_ARGUMENT_RANGE,
                format!(
                    "the validation and test fractions add up to {}, leaving no training data",
                    validation + test
                ),
            )
            .primary(ctx.file, setting.span, "validation + test must be below 1")
            .help("hold out less, e.g. `split validation: 0.1, test: 0.1`"),
        );
        return None;
    }
    Some(Split {
        validation,
        test,
        stratify,
        seed,
        span: setting.span,
    })
}

fn lower_batch(ctx: &mut Ctx, setting: &Setting) -> Option<Batch> {
    let b = ctx.bind(
        "batch",
        setting.span,
        &setting.args,
        &["size", "drop_remainder"],
        1,
    );
    // `batch all`: the whole (training) set in one batch, for full-batch gradient descent.
    let all = b
        .get("size")
        .is_some_and(|e| matches!(&e.kind, ExprKind::Name(n) if n.name == "all"));
    let size = if all {
        Some(Batch::ALL)
    } else {
        b.require(ctx, "size").and_then(|e| ctx.size(e, "size", 1))
    };
    let drop_remainder = opt(b.get("drop_remainder"), |e| {
        ctx.boolean(e, "drop_remainder")
    })?;
    Some(Batch {
        size: size?,
        drop_remainder: drop_remainder.unwrap_or(false),
        span: setting.span,
    })
}

#[cfg(test)]
#[path = "lower_tests.rs"]
mod tests;
