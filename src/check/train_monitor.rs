//! `early_stopping`: its arguments, and whether the value it monitors is one the run logs.
//!
//! Input: the `early_stopping` setting, the block's metrics (and where they were set) and what
//! the data pipeline yields. Output: [`EarlyStopping`] with the direction of improvement
//! resolved, or diagnostics: a monitored metric the block does not log, or a `val_*` value on
//! a pipeline without a validation split (E0505), at the `monitor:` argument.

use super::signature::{self as sig, float, int_min, kw, Default, Kind, Limit, Param, Signature};
use super::train_fit::DataFacts;
use super::train_types::{EarlyStopping, Metric, MonitorMode};
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::syntax::ast::{Arg, Setting};

/// The values a run logs each epoch and early stopping may watch: the loss and each metric, on
/// the training batches and (`val_`) on the validation split.
pub const MONITORS: &[&str] = &[
    "val_loss",
    "loss",
    "val_accuracy",
    "accuracy",
    "val_mae",
    "mae",
    "val_mse",
    "mse",
    "val_precision",
    "precision",
    "val_recall",
    "recall",
    "val_f1",
    "f1",
    "val_auc",
    "auc",
    "val_top_k_accuracy",
    "top_k_accuracy",
];

/// The options of `early_stopping`.
pub const EARLY_STOPPING: &[Param] = &[
    kw("patience", int_min(1), Default::Int(5)),
    kw("monitor", Kind::Choice(MONITORS), Default::Name("val_loss")),
    kw(
        "min_delta",
        float(Limit::Incl(0.0), Limit::None),
        Default::Float(0.0),
    ),
    kw(
        "mode",
        Kind::Choice(&["auto", "min", "max"]),
        Default::Name("auto"),
    ),
    kw("restore_best", Kind::Bool, Default::Bool(true)),
];

/// Whether a larger value of the logged quantity `name` is better (`auto` mode): accuracies,
/// precision, recall, f1 and auc are maximized, losses and errors minimized.
pub fn larger_is_better(name: &str) -> bool {
    let metric = name.strip_prefix("val_").unwrap_or(name);
    matches!(
        metric,
        "accuracy" | "precision" | "recall" | "f1" | "auc" | "top_k_accuracy"
    )
}

/// Binds `early_stopping` and checks its monitor against what the run logs. `metrics` are the
/// block's (with the span of the `metrics` setting, if written); `data` what the pipeline
/// yields, when it checked.
pub fn early_stopping(
    file: FileId,
    setting: &Setting,
    metrics: Option<(&[Metric], Span)>,
    data: Option<&DataFacts>,
    outputs: &[String],
    diags: &mut Vec<Diagnostic>,
) -> Option<EarlyStopping> {
    let own = output_monitor(file, "early stopping", &setting.args, outputs, diags)?;
    let rest;
    let args = match &own {
        Some(_) => {
            rest = without_monitor(&setting.args);
            &rest
        }
        None => &setting.args,
    };
    let bound = sig::bind(
        file,
        &Signature {
            params: EARLY_STOPPING,
        },
        "`early_stopping`",
        args,
        setting.span,
        diags,
    )?;
    let (monitor, at) = match &own {
        Some((name, span)) => (name.clone(), Some(*span)),
        None => (bound.name("monitor").to_string(), bound.span("monitor")),
    };
    let written = if at.is_some() {
        "monitored here"
    } else {
        "`monitor` defaults to `val_loss`"
    };
    let at = at.unwrap_or(setting.key.span);
    if own.is_some() {
        // A per-output value is logged; only a `val_` one needs a validation split.
        if !check_validation(file, "early stopping", &monitor, (at, written), data, diags) {
            return None;
        }
    } else if !check_monitor(
        file,
        "early stopping",
        &monitor,
        (at, written),
        metrics,
        data,
        diags,
    ) {
        return None;
    }
    let mode = resolve_mode(bound.name("mode"), &monitor);
    Some(EarlyStopping {
        patience: bound.int("patience").unsigned_abs(),
        monitor,
        min_delta: bound.float("min_delta"),
        mode,
        restore_best: bound.bool("restore_best"),
    })
}

/// Whether the run logs `monitor`, a value `who` watches (`at` is where it was written, with
/// the label to put there); otherwise an E0505 diagnostic there: a metric the block does not
/// log, or a `val_*` value on a pipeline without a validation split.
pub(super) fn check_monitor(
    file: FileId,
    who: &str,
    monitor: &str,
    (at, written): (Span, &str),
    metrics: Option<(&[Metric], Span)>,
    data: Option<&DataFacts>,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let metric = monitor.strip_prefix("val_").unwrap_or(monitor);
    if metric != "loss" {
        let logged = metrics.is_some_and(|(m, _)| m.iter().any(|k| k.name() == metric));
        if !logged {
            let mut d = Diagnostic::error(
                codes::CHECK_MONITOR,
                format!("{who} monitors `{monitor}`, which this run does not log"),
            )
            .primary(file, at, written)
            .help(format!("add `{metric}` to the block's `metrics`"));
            if let Some((_, span)) = metrics {
                d = d.secondary(file, span, "the metrics logged are set here");
            }
            diags.push(d);
            return false;
        }
    }
    check_validation(file, who, monitor, (at, written), data, diags)
}

/// Whether a `val_*` monitor has a validation split to be measured on (E0505 if not).
pub(super) fn check_validation(
    file: FileId,
    who: &str,
    monitor: &str,
    (at, written): (Span, &str),
    data: Option<&DataFacts>,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let metric = monitor.strip_prefix("val_").unwrap_or(monitor);
    if monitor.starts_with("val_") {
        if let Some(facts) = data.filter(|f| f.validation.is_none()) {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_MONITOR,
                    format!(
                        "{who} monitors `{monitor}`, and the data `{}` has no validation split",
                        facts.name
                    ),
                )
                .primary(file, at, written)
                .secondary(file, facts.source_span, "no `split` in this pipeline")
                .help(format!(
                    "add `split validation: 0.2` to data `{}`, or monitor `{metric}`",
                    facts.name
                )),
            );
            return false;
        }
    }
    true
}

/// For a model with several outputs (`outputs`: the names it logs besides `loss`, as
/// [`super::train_types::OutputTrain::logged_names`] gives them), the `monitor` argument of
/// `setting` when it names one of them, with or without `val_` (`Some(None)`: no such
/// argument, bind as usual). A name that is neither such a value nor a known monitor is E0505,
/// with a did-you-mean over both (`None`).
#[allow(clippy::option_option)]
pub(super) fn output_monitor(
    file: FileId,
    who: &str,
    args: &[Arg],
    outputs: &[String],
    diags: &mut Vec<Diagnostic>,
) -> Option<Option<(String, Span)>> {
    if outputs.is_empty() {
        return Some(None);
    }
    let Some(arg) = args
        .iter()
        .find(|a| a.name.as_ref().is_some_and(|k| k.name == "monitor"))
    else {
        return Some(None);
    };
    let crate::syntax::ast::ExprKind::Name(n) = &arg.value.kind else {
        return Some(None);
    };
    let name = n.name.as_str();
    if MONITORS.contains(&name) {
        return Some(None);
    }
    let bare = name.strip_prefix("val_").unwrap_or(name);
    if outputs.iter().any(|o| o == bare) {
        return Some(Some((name.to_string(), n.span)));
    }
    let mut known: Vec<String> = vec!["loss".into(), "val_loss".into()];
    for o in outputs {
        known.push(o.clone());
        known.push(format!("val_{o}"));
    }
    let mut d = Diagnostic::error(
        codes::CHECK_MONITOR,
        format!("{who} monitors `{name}`, which this run does not log"),
    )
    .primary(file, n.span, "not a logged value")
    .note(format!("this run logs {}", known.join(", ")));
    if let Some(c) = crate::diag::suggest::closest(name, known.iter().map(String::as_str)) {
        d = d.help(format!("did you mean `{c}`?"));
    }
    diags.push(d);
    None
}

/// `args` without their `monitor` argument (bound apart, by [`output_monitor`]).
pub(super) fn without_monitor(args: &[Arg]) -> Vec<Arg> {
    args.iter()
        .filter(|a| a.name.as_ref().is_none_or(|k| k.name != "monitor"))
        .cloned()
        .collect()
}

/// The direction of `mode` (`min`, `max`, or `auto`: by the monitored value's name).
pub(super) fn resolve_mode(mode: &str, monitor: &str) -> MonitorMode {
    match mode {
        "min" => MonitorMode::Min,
        "max" => MonitorMode::Max,
        _ if larger_is_better(monitor) => MonitorMode::Max,
        _ => MonitorMode::Min,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_mode_maximizes_accuracies_and_minimizes_the_rest() {
        assert!(larger_is_better("accuracy"));
        assert!(larger_is_better("val_accuracy"));
        assert!(!larger_is_better("val_loss"));
        assert!(!larger_is_better("mae"));
        assert!(!larger_is_better("val_mse"));
        for name in ["precision", "val_recall", "f1", "val_auc", "top_k_accuracy"] {
            assert!(larger_is_better(name), "{name}");
        }
    }
}
