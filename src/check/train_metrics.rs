//! A train block's `metrics` and `class_weight`: reading them, and whether they make sense for
//! the loss and the model's output.
//!
//! Input: the settings as written, the resolved loss (with where it was written) and the
//! checked model. Output: the [`Metric`]s and the [`ClassWeight`], or diagnostics: a metric
//! of classes (precision, recall, f1, auc, top-k accuracy) with a regression loss, or top-k
//! accuracy on a binary output (E0510); class weights with a loss that has no classes, on an
//! output that is not `[N, classes]`, or of the wrong count (E0511), each at the setting with
//! the loss (and the output) as the reason.

use super::signature::{self as sig, int_min, kw, Default, Kind, Param, Signature};
use super::train_fit::{classes, output_span};
use super::train_types::{ClassWeight, Loss, LossKind, Metric};
use super::types::CheckedModel;
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::syntax::ast::{self, ExprKind, Setting};

/// The options of `top_k_accuracy(k:)` (Keras's default `k = 5`).
pub const TOP_K: &[Param] = &[kw("k", int_min(1), Default::Int(5))];

/// The span of a setting from its key to its last argument.
pub fn setting_span(s: &Setting) -> Span {
    s.args
        .iter()
        .fold(s.key.span, |acc, a| acc.to(a.value.span))
}

/// The values of a setting written as one list or as several arguments.
fn items(s: &Setting) -> Vec<&ast::Expr> {
    match s.args.as_slice() {
        [a] => match &a.value.kind {
            ExprKind::List(items) => items.iter().collect(),
            _ => vec![&a.value],
        },
        _ => s.args.iter().map(|a| &a.value).collect(),
    }
}

/// Reads `metrics [accuracy, top_k_accuracy(k: 3), ...]`.
pub fn metrics(file: FileId, s: &Setting, diags: &mut Vec<Diagnostic>) -> Option<Vec<Metric>> {
    let param = kw("metric", Kind::Choice(&Metric::NAMES), Default::Required);
    let mut out: Vec<Metric> = Vec::new();
    let mut spans: Vec<Span> = Vec::new();
    let mut ok = true;
    for e in items(s) {
        let (name_expr, call) = match &e.kind {
            ExprKind::Call(c) => (
                ast::Expr {
                    kind: ExprKind::Name(c.callee.clone()),
                    span: c.callee.span,
                },
                Some(c),
            ),
            _ => (e.clone(), None),
        };
        let name = match sig::choice(file, "`metrics`", &param, &name_expr, &Metric::NAMES) {
            Ok(n) => n,
            Err(d) => {
                ok = false;
                diags.push(d);
                continue;
            }
        };
        let Some(metric) = Metric::from_name(&name) else {
            continue;
        };
        let metric = match (metric, call) {
            (Metric::TopKAccuracy { .. }, Some(c)) => {
                let Some(b) = sig::bind(
                    file,
                    &Signature { params: TOP_K },
                    "metric `top_k_accuracy`",
                    &c.args,
                    c.span,
                    diags,
                ) else {
                    ok = false;
                    continue;
                };
                Metric::TopKAccuracy {
                    k: b.int("k").unsigned_abs(),
                }
            }
            (_, Some(c)) if !c.args.is_empty() => {
                let sig = Signature { params: &[] };
                let _ = sig::bind(
                    file,
                    &sig,
                    &format!("metric `{name}`"),
                    &c.args,
                    c.span,
                    diags,
                );
                ok = false;
                continue;
            }
            (m, _) => m,
        };
        if let Some((_, first)) = out
            .iter()
            .zip(&spans)
            .find(|(m, _)| Metric::name(**m) == metric.name())
        {
            diags.push(duplicate_metric(file, metric, e.span, *first));
            continue;
        }
        out.push(metric);
        spans.push(e.span);
    }
    ok.then_some(out)
}

/// Two metrics that would log the same `metrics.csv` column (E0520).
fn duplicate_metric(file: FileId, metric: Metric, at: Span, first: Span) -> Diagnostic {
    let name = metric.name();
    let mut d = Diagnostic::error(
        codes::CHECK_DUPLICATE_METRIC,
        format!("the metric `{name}` is listed twice"),
    )
    .primary(file, at, format!("a second `{name}` column"))
    .secondary(file, first, "first listed here")
    .note("each metric is one column of `metrics.csv` (and `val_` one with a validation split)");
    d = if matches!(metric, Metric::TopKAccuracy { .. }) {
        d.help("`top_k_accuracy` logs one column whatever its `k`: keep the one `k` you want")
    } else {
        d.help(format!("remove the second `{name}`"))
    };
    d
}

/// Refuses metrics that need classes with a loss or output that has none (E0510).
pub fn check_metrics_fit(
    file: FileId,
    metrics: &[Metric],
    metrics_setting: &Setting,
    loss: &Loss,
    loss_span: Span,
    model: &CheckedModel,
    diags: &mut Vec<Diagnostic>,
) {
    let classification = matches!(
        loss.kind,
        LossKind::BinaryCrossentropy
            | LossKind::CategoricalCrossentropy
            | LossKind::SparseCategoricalCrossentropy
    );
    let items = items(metrics_setting);
    for (metric, expr) in metrics.iter().zip(items) {
        let name = metric.name();
        let problem = if !classification && metric.needs_classes() {
            Some((
                format!(
                    "`{name}` counts classes, and the loss `{}` has none",
                    loss.kind.name()
                ),
                "a regression loss is set here".to_string(),
                "use `mae` or `mse` for a regression, or a cross-entropy loss for classes",
            ))
        } else if matches!(metric, Metric::TopKAccuracy { .. })
            && loss.kind == LossKind::BinaryCrossentropy
        {
            Some((
                format!("`{name}` ranks classes, and a binary output has one score"),
                "binary cross-entropy is set here".to_string(),
                "use `accuracy`, `precision`, `recall`, `f1` or `auc` for a binary output",
            ))
        } else {
            None
        };
        let Some((message, why, help)) = problem else {
            if let Metric::TopKAccuracy { k } = *metric {
                top_k_covers_all(file, k, expr.span, model, diags);
            }
            continue;
        };
        diags.push(
            Diagnostic::error(codes::CHECK_METRIC_LOSS, message)
                .primary(file, expr.span, "does not fit the loss")
                .secondary(file, loss_span, why)
                .note(format!(
                    "the model's output is {}",
                    model.output_fact.shape_string()
                ))
                .help(help),
        );
    }
}

/// Warns when `top_k_accuracy(k:)` ranks at least as many classes as the output has: every
/// sample is then a hit and the metric is always 1 (E0521).
fn top_k_covers_all(
    file: FileId,
    k: u64,
    at: Span,
    model: &CheckedModel,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(c) = classes(model) else {
        return;
    };
    if usize::try_from(k).is_ok_and(|k| k < c) {
        return;
    }
    diags.push(
        Diagnostic::warning(
            codes::CHECK_TOP_K_ALL_CLASSES,
            format!(
                "`top_k_accuracy(k: {k})` on {} is always 1",
                classes_text(c)
            ),
        )
        .primary(file, at, format!("k = {k} ranks every class"))
        .secondary(
            file,
            output_span(model),
            format!("the output has {}", classes_text(c)),
        )
        .note("a sample is a hit when its class is among the k best scores")
        .help(if c > 1 {
            format!(
                "choose `k` below {c} (e.g. `top_k_accuracy(k: {})`), or log `accuracy`",
                (c - 1).min(5)
            )
        } else {
            "log `accuracy` instead".to_string()
        }),
    );
}

/// Reads `class_weight balanced` or `class_weight [w0, w1, ...]` (one weight >= 0 per class).
pub fn class_weight(file: FileId, s: &Setting, diags: &mut Vec<Diagnostic>) -> Option<ClassWeight> {
    let type_error = |at: Span, found: &str| {
        Diagnostic::error(
            codes::CHECK_ARGUMENT_TYPE,
            format!("`class_weight` takes `balanced` or a list of weights, found {found}"),
        )
        .primary(file, at, "expected `balanced` or a number >= 0")
        .help("write `class_weight balanced` or `class_weight [1.0, 3.0]` (one weight per class, class 0 first)")
    };
    if let [a] = s.args.as_slice() {
        if let ExprKind::Name(n) = &a.value.kind {
            if n.name == "balanced" {
                return Some(ClassWeight::Balanced);
            }
            let mut d = type_error(n.span, &format!("`{}`", n.name));
            if crate::diag::suggest::closest(&n.name, ["balanced"]).is_some() {
                d = d.help("did you mean `balanced`?");
            }
            diags.push(d);
            return None;
        }
    }
    let mut weights = Vec::new();
    let mut ok = true;
    for e in items(s) {
        match &e.kind {
            ExprKind::Number(n) if n.value >= 0.0 && n.value.is_finite() => weights.push(n.value),
            ExprKind::Number(n) => {
                ok = false;
                diags.push(type_error(e.span, &format!("{}", n.value)));
            }
            ExprKind::Name(n) => {
                ok = false;
                diags.push(type_error(e.span, &format!("`{}`", n.name)));
            }
            _ => {
                ok = false;
                diags.push(type_error(e.span, "another kind of value"));
            }
        }
    }
    if weights.is_empty() && ok {
        diags.push(type_error(setting_span(s), "an empty list"));
        return None;
    }
    ok.then_some(ClassWeight::Given(weights))
}

/// Refuses class weights without classes to weigh (E0511).
pub fn check_class_weight_fit(
    file: FileId,
    weights: &ClassWeight,
    setting: &Setting,
    loss: &Loss,
    loss_span: Span,
    model: &CheckedModel,
    diags: &mut Vec<Diagnostic>,
) {
    let span = setting_span(setting);
    let out = &model.output_fact;
    let base = |message: String, label: &str| {
        Diagnostic::error(codes::CHECK_CLASS_WEIGHT, message).primary(file, span, label)
    };
    let per_output_class = match loss.kind {
        LossKind::BinaryCrossentropy => Some(2),
        LossKind::CategoricalCrossentropy | LossKind::SparseCategoricalCrossentropy => {
            classes(model)
        }
        _ => {
            diags.push(
                base(
                    format!(
                        "`class_weight` weighs samples by class, and the loss `{}` has no classes",
                        loss.kind.name()
                    ),
                    "needs a classification loss",
                )
                .secondary(file, loss_span, "a regression loss is set here")
                .help("remove `class_weight`, or train with a cross-entropy loss"),
            );
            return;
        }
    };
    if out.rank() != 2 {
        diags.push(
            base(
                format!(
                    "`class_weight` needs one class per sample, an output [N, classes]; the model outputs {}",
                    out.shape_string()
                ),
                "one weight per sample needs one class per sample",
            )
            .secondary(
                file,
                output_span(model),
                format!("the model's output {out} is computed here"),
            )
            .help("flatten or pool the output to [N, classes], or remove `class_weight`"),
        );
        return;
    }
    if let (ClassWeight::Given(w), Some(c)) = (weights, per_output_class) {
        if w.len() != c {
            let what = if loss.kind == LossKind::BinaryCrossentropy {
                "a binary output has 2 classes (0 and 1)".to_string()
            } else {
                format!("the output has {c} classes")
            };
            diags.push(
                base(
                    format!(
                        "`class_weight` lists {} weight{}, and {what}",
                        w.len(),
                        if w.len() == 1 { "" } else { "s" }
                    ),
                    "one weight per class, class 0 first",
                )
                .secondary(
                    file,
                    output_span(model),
                    format!("the model's output {out} is computed here"),
                )
                .note(format!("expected {c} weights, found {}", w.len()))
                .help("list one weight per class, or write `class_weight balanced`"),
            );
        }
    }
}

/// `1 class`, `10 classes`.
fn classes_text(c: usize) -> String {
    if c == 1 {
        "1 class".to_string()
    } else {
        format!("{c} classes")
    }
}
