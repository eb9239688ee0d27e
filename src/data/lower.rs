//! Lowering: a `data` block's AST → a [`PipelineSpec`].
//!
//! Input: one [`ast::DataDef`]. Output: the typed spec when the block has no errors, and every
//! problem found (unknown names with "did you mean", missing, mistyped or out-of-range
//! arguments), each an E06xx diagnostic at the offending span. No file is opened here.

use super::lower_args::{Bound, Ctx};
use super::spec::{
    Augment, Batch, ColumnRef, CsvSource, FeatureColumns, IdxSource, LabelRead, NpySource,
    PipelineSpec, RegressionSource, Shuffle, SineSource, SourceKind, SourceSpec, Split, Step,
    TokenSource, Transform,
};
use super::suggest::help_text;
use crate::diag::codes::{
    DATA_ARGUMENT_RANGE, DATA_ARGUMENT_TYPE, DATA_DUPLICATE, DATA_MISSING_ARGUMENT,
    DATA_UNKNOWN_SETTING, DATA_UNKNOWN_SOURCE, DATA_UNKNOWN_STEP,
};
use crate::diag::{Diagnostic, FileId, Span};
use crate::syntax::ast::{self, Call, Expr, ExprKind, Setting};

const SETTINGS: &[&str] = &[
    "source", "map", "augment", "split", "shuffle", "batch", "seed",
];
const SOURCES: &[&str] = &["csv", "idx", "npy", "regression", "tokens", "sine"];
const TRANSFORMS: &[&str] = &[
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
const AUGMENTS: &[&str] = &["flip", "rotate", "zoom", "crop", "noise"];
const TASKS: &[&str] = &["classification", "regression"];

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
    for setting in &def.settings {
        let key = setting.key.name.as_str();
        if !SETTINGS.contains(&key) {
            ctx.error(
                Diagnostic::error(
                    DATA_UNKNOWN_SETTING,
                    format!("unknown data setting `{key}`"),
                )
                .primary(file, setting.key.span, "not a data setting")
                .help(help_text(key, SETTINGS)),
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
                for call in pipeline_calls(&mut ctx, setting) {
                    if let Some(op) = lower_transform(&mut ctx, call) {
                        preprocess.push(Step {
                            op,
                            span: call.span,
                        });
                    }
                }
            }
            "augment" => {
                for call in pipeline_calls(&mut ctx, setting) {
                    if let Some(op) = lower_augment(&mut ctx, call) {
                        augment.push(Step {
                            op,
                            span: call.span,
                        });
                    }
                }
            }
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

fn column_ref(ctx: &mut Ctx, e: &Expr, name: &str) -> Option<ColumnRef> {
    match &e.kind {
        ExprKind::Str(s) => Some(ColumnRef::Name(s.clone())),
        ExprKind::Number(_) => ctx.size(e, name, 0).map(ColumnRef::Index),
        _ => {
            ctx.error(
                Diagnostic::error(
                    DATA_ARGUMENT_TYPE,
                    format!("`{name}` must be a column name (a string) or a 0-based column index"),
                )
                .primary(ctx.file, e.span, "expected a column"),
            );
            None
        }
    }
}

/// `task:` and `classes:` → how labels are read.
fn label_read(ctx: &mut Ctx, b: &Bound<'_>) -> Option<LabelRead> {
    let task = match b.get("task") {
        Some(e) => ctx.keyword(e, "task", TASKS)?,
        None => "classification",
    };
    let classes = match b.get("classes") {
        Some(e) => Some(ctx.count32(e, "classes", 1)?),
        None => None,
    };
    if task == "regression" {
        if let Some(e) = b.get("classes") {
            ctx.error(
                Diagnostic::error(
                    DATA_ARGUMENT_RANGE,
                    "`classes` is for classification labels",
                )
                .primary(ctx.file, e.span, "but `task: regression` is set"),
            );
            return None;
        }
        return Some(LabelRead::Value);
    }
    Some(LabelRead::Class { classes })
}

fn lower_source(ctx: &mut Ctx, setting: &Setting) -> Option<SourceSpec> {
    let call = match setting.args.as_slice() {
        [arg] if arg.name.is_none() => {
            if let ExprKind::Call(c) = &arg.value.kind {
                c
            } else {
                not_a_source(ctx, arg.value.span);
                return None;
            }
        }
        _ => {
            not_a_source(ctx, setting.span);
            return None;
        }
    };
    let name = call.callee.name.as_str();
    let span = call.span;
    let kind = match name {
        "csv" => {
            let b = ctx.bind(
                "csv",
                span,
                &call.args,
                &["path", "label", "features", "header", "classes", "task"],
                1,
            );
            let arg = b.require(ctx, "path")?;
            let path = ctx.string(arg, "path")?;
            let label = match b.get("label") {
                Some(e) => Some(column_ref(ctx, e, "label")?),
                None => None,
            };
            let features = match b.get("features") {
                None => FeatureColumns::AllButLabel { count: None },
                Some(e) => match &e.kind {
                    ExprKind::List(items) if !items.is_empty() => FeatureColumns::Listed(
                        items
                            .iter()
                            .map(|i| column_ref(ctx, i, "features"))
                            .collect::<Option<Vec<_>>>()?,
                    ),
                    _ => FeatureColumns::AllButLabel {
                        count: Some(ctx.size(e, "features", 1)?),
                    },
                },
            };
            let header = match b.get("header") {
                Some(e) => ctx.boolean(e, "header")?,
                None => true,
            };
            SourceKind::Csv(CsvSource {
                path,
                label,
                label_read: label_read(ctx, &b)?,
                features,
                header,
            })
        }
        "idx" => {
            let b = ctx.bind(
                "idx",
                span,
                &call.args,
                &["images", "labels", "shape", "classes"],
                1,
            );
            let arg = b.require(ctx, "images")?;
            let images = ctx.string(arg, "images")?;
            let labels = opt(b.get("labels"), |e| ctx.string(e, "labels"))?;
            let shape = opt(b.get("shape"), |e| ctx.shape(e, "shape"))?;
            let classes = opt(b.get("classes"), |e| ctx.count32(e, "classes", 1))?;
            SourceKind::Idx(IdxSource {
                images,
                labels,
                shape,
                classes,
            })
        }
        "npy" => {
            let b = ctx.bind(
                "npy",
                span,
                &call.args,
                &["features", "labels", "shape", "classes", "task"],
                1,
            );
            let arg = b.require(ctx, "features")?;
            let features = ctx.string(arg, "features")?;
            let labels = opt(b.get("labels"), |e| ctx.string(e, "labels"))?;
            let shape = opt(b.get("shape"), |e| ctx.shape(e, "shape"))?;
            SourceKind::Npy(NpySource {
                features,
                labels,
                shape,
                label_read: label_read(ctx, &b)?,
            })
        }
        "regression" => {
            let b = ctx.bind(
                "regression",
                span,
                &call.args,
                &["n", "features", "noise", "seed"],
                0,
            );
            let n = b.require(ctx, "n").and_then(|e| ctx.size(e, "n", 1));
            let features = b
                .require(ctx, "features")
                .and_then(|e| ctx.size(e, "features", 1));
            let noise = noise_arg(ctx, &b, "noise", 0.0)?;
            let seed = opt(b.get("seed"), |e| ctx.seed(e))?.unwrap_or(0);
            SourceKind::Regression(RegressionSource {
                n: n?,
                features: features?,
                noise,
                seed,
            })
        }
        "tokens" => {
            let b = ctx.bind(
                "tokens",
                span,
                &call.args,
                &["n", "length", "vocab", "classes", "seed"],
                0,
            );
            let n = b.require(ctx, "n").and_then(|e| ctx.size(e, "n", 1));
            let length = b
                .require(ctx, "length")
                .and_then(|e| ctx.size(e, "length", 1));
            let vocab = b
                .require(ctx, "vocab")
                .and_then(|e| ctx.count32(e, "vocab", 2));
            let classes = b
                .require(ctx, "classes")
                .and_then(|e| ctx.count32(e, "classes", 2));
            let seed = opt(b.get("seed"), |e| ctx.seed(e))?.unwrap_or(0);
            if let (Some(v), Some(c)) = (vocab, classes) {
                if v <= c {
                    ctx.error(
                        Diagnostic::error(
                            DATA_ARGUMENT_RANGE,
                            format!("tokens needs a vocabulary larger than its {c} classes, found vocab {v}"),
                        )
                        .primary(ctx.file, span, "vocab too small")
                        .help("each class owns a band of the vocabulary (id 0 is padding)"),
                    );
                    return None;
                }
            }
            SourceKind::Tokens(TokenSource {
                n: n?,
                length: length?,
                vocab: vocab?,
                classes: classes?,
                seed,
            })
        }
        "sine" => {
            let b = ctx.bind(
                "sine",
                span,
                &call.args,
                &["n", "period", "noise", "seed"],
                0,
            );
            let n = b.require(ctx, "n").and_then(|e| ctx.size(e, "n", 1));
            let period = match b.get("period") {
                Some(e) => ctx.number(e, "period", "greater than 0", |v| v > 0.0)?,
                None => 25.0,
            };
            let noise = noise_arg(ctx, &b, "noise", 0.0)?;
            let seed = opt(b.get("seed"), |e| ctx.seed(e))?.unwrap_or(0);
            SourceKind::Sine(SineSource {
                n: n?,
                period,
                noise,
                seed,
            })
        }
        _ => {
            ctx.error(
                Diagnostic::error(DATA_UNKNOWN_SOURCE, format!("unknown data source `{name}`"))
                    .primary(ctx.file, call.callee.span, "not a source")
                    .help(help_text(name, SOURCES)),
            );
            return None;
        }
    };
    Some(SourceSpec { kind, span })
}

fn not_a_source(ctx: &mut Ctx, span: Span) {
    ctx.error(
        Diagnostic::error(
            DATA_ARGUMENT_TYPE,
            "`source` takes one source such as `csv(\"data.csv\", label: \"target\")`",
        )
        .primary(ctx.file, span, "expected a source call"),
    );
}

/// `Some(None)` when absent, `Some(Some(v))` when valid, `None` when given but invalid.
#[allow(clippy::option_option)] // the three cases are exactly what `?` needs here
fn opt<T>(e: Option<&Expr>, read: impl FnOnce(&Expr) -> Option<T>) -> Option<Option<T>> {
    match e {
        None => Some(None),
        Some(e) => read(e).map(Some),
    }
}

fn noise_arg(ctx: &mut Ctx, b: &Bound<'_>, name: &str, default: f64) -> Option<f64> {
    match b.get(name) {
        Some(e) => ctx.number(e, name, "0 or more", |v| v >= 0.0),
        None => Some(default),
    }
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
        .help(help_text(name, here))
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
        &["validation", "seed"],
        1,
    );
    let e = b.require(ctx, "validation")?;
    let validation = ctx.number(e, "validation", "strictly between 0 and 1", |v| {
        v > 0.0 && v < 1.0
    });
    let seed = opt(b.get("seed"), |e| ctx.seed(e))?.unwrap_or(0);
    Some(Split {
        validation: validation?,
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
    let size = b.require(ctx, "size").and_then(|e| ctx.size(e, "size", 1));
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
