//! Lowering of a `data` block's `source` line: `csv`, `idx`, `npy` and the generators.
//!
//! Input: the `source` setting. Output: a [`SourceSpec`] or `None` after reporting every
//! problem in its arguments (E0601, E0603–E0606) to the [`Ctx`].

use super::lower_args::{opt, Bound, Ctx};
use super::spec::{
    ColumnRef, CsvSource, FeatureColumns, IdxSource, LabelColumn, LabelRead, NpySource,
    RegressionSource, SineSource, SourceKind, SourceSpec, TokenSource,
};
use crate::diag::codes::{DATA_ARGUMENT_RANGE, DATA_ARGUMENT_TYPE, DATA_UNKNOWN_SOURCE};
use crate::diag::suggest::help_or_list;
use crate::diag::{Diagnostic, Span};
use crate::syntax::ast::{Call, Expr, ExprKind, Setting};

/// The sources a data block can read from.
pub const SOURCES: &[&str] = &["csv", "idx", "npy", "regression", "tokens", "sine"];
const TASKS: &[&str] = &["classification", "regression"];

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

pub(super) fn lower_source(ctx: &mut Ctx, setting: &Setting) -> Option<SourceSpec> {
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
        "csv" => csv_source(ctx, call)?,
        "idx" => idx_source(ctx, call)?,
        "npy" => npy_source(ctx, call)?,
        "regression" => regression_source(ctx, call)?,
        "tokens" => tokens_source(ctx, call)?,
        "sine" => sine_source(ctx, call)?,
        _ => {
            ctx.error(
                Diagnostic::error(DATA_UNKNOWN_SOURCE, format!("unknown data source `{name}`"))
                    .primary(ctx.file, call.callee.span, "not a source")
                    .help(help_or_list(name, SOURCES)),
            );
            return None;
        }
    };
    Some(SourceSpec { kind, span })
}

/// `csv(...)`.
fn csv_source(ctx: &mut Ctx, call: &Call) -> Option<SourceKind> {
    let span = call.span;
    let b = ctx.bind(
        "csv",
        span,
        &call.args,
        &["path", "label", "features", "header", "classes", "task"],
        1,
    );
    let arg = b.require(ctx, "path")?;
    let path = ctx.string(arg, "path")?;
    let (label, label_read, more_labels, label_spans) = csv_labels(ctx, &b)?;
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
    Some(SourceKind::Csv(CsvSource {
        path,
        label,
        label_read,
        features,
        header,
        more_labels,
        label_spans,
    }))
}

/// The label columns of a CSV source and how each is read: `label: "target"` with `classes: K`
/// (one label set, as always), or `label: ["digit", "parity"]` with `classes: [10, 2]`, one
/// class count per column (`0`: real values), or no `classes` (each column as `task:` says).
type CsvLabels = (Option<ColumnRef>, LabelRead, Vec<LabelColumn>, Vec<Span>);

fn csv_labels(ctx: &mut Ctx, b: &Bound<'_>) -> Option<CsvLabels> {
    let items = match b.get("label").map(|e| (e, &e.kind)) {
        Some((e, ExprKind::List(items))) if items.len() > 1 => (e, items),
        Some((_, ExprKind::List(items))) if items.len() == 1 => {
            let label = items.first().and_then(|e| column_ref(ctx, e, "label"))?;
            return Some((Some(label), label_read(ctx, b)?, Vec::new(), Vec::new()));
        }
        Some((e, ExprKind::List(_))) => {
            ctx.error(
                Diagnostic::error(DATA_ARGUMENT_RANGE, "`label` lists no column")
                    .primary(ctx.file, e.span, "an empty list")
                    .help(
                        "name one label column, or one per model output: `label: [\"a\", \"b\"]`",
                    ),
            );
            return None;
        }
        Some((e, _)) => {
            let label = column_ref(ctx, e, "label")?;
            return Some((Some(label), label_read(ctx, b)?, Vec::new(), Vec::new()));
        }
        None => return Some((None, label_read(ctx, b)?, Vec::new(), Vec::new())),
    };
    let (list, items) = items;
    let columns: Vec<ColumnRef> = items
        .iter()
        .map(|e| column_ref(ctx, e, "label"))
        .collect::<Option<_>>()?;
    let reads: Vec<LabelRead> = match b.get("classes") {
        Some(e) => {
            let ExprKind::List(counts) = &e.kind else {
                ctx.error(
                    Diagnostic::error(
                        DATA_ARGUMENT_TYPE,
                        "with several label columns, `classes` gives one count per column",
                    )
                    .primary(ctx.file, e.span, "one count")
                    .secondary(ctx.file, list.span, format!("{} label columns", columns.len()))
                    .help("write a list of the same length, `0` for a real-valued column: `classes: [10, 0]`"),
                );
                return None;
            };
            if counts.len() != columns.len() {
                ctx.error(
                    Diagnostic::error(
                        DATA_ARGUMENT_RANGE,
                        format!(
                            "`classes` gives {} count{} for {} label columns",
                            counts.len(),
                            if counts.len() == 1 { "" } else { "s" },
                            columns.len()
                        ),
                    )
                    .primary(
                        ctx.file,
                        e.span,
                        format!(
                            "{} count{}",
                            counts.len(),
                            if counts.len() == 1 { "" } else { "s" }
                        ),
                    )
                    .secondary(
                        ctx.file,
                        list.span,
                        format!("{} label columns", columns.len()),
                    )
                    .help("give one count per label column, `0` for a real-valued column"),
                );
                return None;
            }
            if let Some(t) = b.get("task") {
                if ctx.keyword(t, "task", TASKS)? == "regression" {
                    ctx.error(
                        Diagnostic::error(
                            DATA_ARGUMENT_RANGE,
                            "`classes` is for classification labels",
                        )
                        .primary(
                            ctx.file,
                            e.span,
                            "but `task: regression` is set",
                        ),
                    );
                    return None;
                }
            }
            counts
                .iter()
                .map(|c| {
                    ctx.count32(c, "classes", 0).map(|k| match k {
                        0 => LabelRead::Value,
                        k => LabelRead::Class { classes: Some(k) },
                    })
                })
                .collect::<Option<_>>()?
        }
        None => vec![label_read(ctx, b)?; columns.len()],
    };
    let mut all = columns
        .into_iter()
        .zip(reads)
        .map(|(column, read)| LabelColumn { column, read });
    let first = all.next()?;
    let spans = items.iter().map(|e| e.span).collect();
    Some((Some(first.column), first.read, all.collect(), spans))
}

/// `idx(...)`.
fn idx_source(ctx: &mut Ctx, call: &Call) -> Option<SourceKind> {
    let span = call.span;
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
    Some(SourceKind::Idx(IdxSource {
        images,
        labels,
        shape,
        classes,
    }))
}

/// `npy(...)`.
fn npy_source(ctx: &mut Ctx, call: &Call) -> Option<SourceKind> {
    let span = call.span;
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
    Some(SourceKind::Npy(NpySource {
        features,
        labels,
        shape,
        label_read: label_read(ctx, &b)?,
    }))
}

/// `regression(...)`.
fn regression_source(ctx: &mut Ctx, call: &Call) -> Option<SourceKind> {
    let span = call.span;
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
    Some(SourceKind::Regression(RegressionSource {
        n: n?,
        features: features?,
        noise,
        seed,
    }))
}

/// `tokens(...)`.
fn tokens_source(ctx: &mut Ctx, call: &Call) -> Option<SourceKind> {
    let span = call.span;
    let b = ctx.bind(
        "tokens",
        span,
        &call.args,
        &["n", "length", "vocab", "classes", "seed", "min_length"],
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
    let min_length = opt(b.get("min_length"), |e| ctx.size(e, "min_length", 1))?;
    if let (Some(min), Some(len)) = (min_length, length) {
        if min > len {
            ctx.error(
                Diagnostic::error(
                    DATA_ARGUMENT_RANGE,
                    format!("tokens' min_length {min} is larger than its length {len}"),
                )
                .primary(ctx.file, span, "min_length above length")
                .help("sequences hold between `min_length` and `length` tokens, padded with zeros to `length`"),
            );
            return None;
        }
    }
    if let (Some(v), Some(c)) = (vocab, classes) {
        if v <= c {
            ctx.error(
                Diagnostic::error(
                    DATA_ARGUMENT_RANGE,
                    format!(
                        "tokens needs a vocabulary larger than its {c} classes, found vocab {v}"
                    ),
                )
                .primary(ctx.file, span, "vocab too small")
                .help("each class owns a band of the vocabulary (id 0 is padding)"),
            );
            return None;
        }
    }
    Some(SourceKind::Tokens(TokenSource {
        n: n?,
        length: length?,
        vocab: vocab?,
        classes: classes?,
        seed,
        min_length,
    }))
}

/// `sine(...)`.
fn sine_source(ctx: &mut Ctx, call: &Call) -> Option<SourceKind> {
    let span = call.span;
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
    Some(SourceKind::Sine(SineSource {
        n: n?,
        period,
        noise,
        seed,
    }))
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

fn noise_arg(ctx: &mut Ctx, b: &Bound<'_>, name: &str, default: f64) -> Option<f64> {
    match b.get(name) {
        Some(e) => ctx.number(e, name, "0 or more", |v| v >= 0.0),
        None => Some(default),
    }
}
