//! A train block for a model with several outputs: one loss per output, `loss_weights`, and
//! metrics per output, as Keras's `compile(loss={...}, loss_weights={...}, metrics={...})`.
//!
//! Input: the checked model (its outputs named by the signature or by their layers) and the
//! `loss`, `loss_weights` and `metrics` settings. A setting whose arguments are all named
//! (`loss digit: sparse_categorical_crossentropy, parity: binary_crossentropy`) gives each
//! named output its value; one unnamed value (`loss mse`, `metrics [accuracy]`) applies to
//! every output. Output: one [`OutputTrain`] per output, in the model's order, or diagnostics:
//! a key naming no output (E0527), an output left without a loss (E0528), then per output what
//! a one-output model gets (E0502 loss ↔ output, E0506 activation, E0510 metrics, each at that
//! output's key), and against the data: the count of label sets the pipeline yields against
//! the outputs (E0529), then each output's labels against its loss (E0503), class weights
//! (E0511, one output only, as in Keras).

use std::collections::HashMap;

use super::train::{loss, loss_value};
use super::train_fit::{check_features, check_labels, DataFacts, LabelFacts};
use super::train_loss::{check_loss_activation, check_loss_output};
use super::train_metrics::{check_metrics_fit, metrics, setting_span};
use super::train_types::OutputTrain;
use super::types::CheckedModel;
use crate::diag::{codes, suggest, Diagnostic, FileId, Span};
use crate::syntax::ast::{Arg, ExprKind, Setting};

/// How a setting's arguments are given.
enum Keyed<'s> {
    /// No argument is named: the value applies to every output.
    Every,
    /// Every argument is named after an output: (output index, argument).
    PerOutput(Vec<(usize, &'s Arg)>),
}

/// Reads a setting's arguments as [`Keyed`]; `None` after reporting a key naming no output
/// (E0527), an output named twice (E0206), or named and unnamed arguments mixed (E0302).
fn keyed<'s>(
    file: FileId,
    s: &'s Setting,
    names: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> Option<Keyed<'s>> {
    if s.args.iter().all(|a| a.name.is_none()) {
        return Some(Keyed::Every);
    }
    if let Some(unnamed) = s.args.iter().find(|a| a.name.is_none()) {
        diags.push(
            Diagnostic::error(
                codes::CHECK_ARGUMENT_TYPE,
                format!(
                    "`{}` mixes a value for every output with values per output",
                    s.key.name
                ),
            )
            .primary(file, unnamed.span, "not named after an output")
            .help(format!(
                "name each output: `{} {}: ...`",
                s.key.name,
                names.join(": ..., ")
            )),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut seen: HashMap<usize, Span> = HashMap::new();
    let mut ok = true;
    for a in &s.args {
        let Some(key) = &a.name else { continue };
        let Some(k) = names.iter().position(|n| *n == key.name) else {
            let mut d = Diagnostic::error(
                codes::CHECK_OUTPUT_KEY,
                format!(
                    "`{}` names `{}`, which is not an output of the model",
                    s.key.name, key.name
                ),
            )
            .primary(file, key.span, "no output of this name")
            .note(format!("the outputs are {}", quoted(names)));
            if let Some(c) = suggest::closest(&key.name, names.iter().copied()) {
                d = d.help(format!("did you mean `{c}`?"));
            }
            diags.push(d);
            ok = false;
            continue;
        };
        if let Some(first) = seen.insert(k, key.span) {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_DUPLICATE_ARGUMENT,
                    format!("`{}` names output `{}` twice", s.key.name, key.name),
                )
                .primary(file, key.span, "named again here")
                .secondary(file, first, "first named here")
                .help("keep one of them"),
            );
            ok = false;
        }
        out.push((k, a));
    }
    ok.then_some(Keyed::PerOutput(out))
}

fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    q.join(", ")
}

/// A keyed argument as a setting of its own (`metrics digit: [accuracy]` → `metrics
/// [accuracy]`), for the one-output readers and checks.
fn as_setting(s: &Setting, a: &Arg) -> Setting {
    Setting {
        key: s.key.clone(),
        args: vec![Arg {
            name: None,
            value: a.value.clone(),
            span: a.value.span,
        }],
        span: a.span,
    }
}

/// Reads `loss`, `loss_weights` and `metrics` for a model with several outputs.
pub(super) fn read(
    file: FileId,
    model: &CheckedModel,
    loss_setting: &Setting,
    weights: Option<&Setting>,
    metrics_setting: Option<&Setting>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<OutputTrain>> {
    let names: Vec<&str> = model.outputs.iter().map(|o| o.name.as_str()).collect();
    let n = names.len();
    let mut losses = vec![None; n];
    let mut ok = true;
    match keyed(file, loss_setting, &names, diags) {
        Some(Keyed::Every) => match loss(file, loss_setting, diags) {
            Some(l) => losses.iter_mut().for_each(|x| *x = Some(l)),
            None => ok = false,
        },
        Some(Keyed::PerOutput(args)) => {
            for (k, a) in args {
                match loss_value(file, &a.value, a.span, diags) {
                    Some(l) => losses[k] = Some(l),
                    None => ok = false,
                }
            }
        }
        None => ok = false,
    }
    let missing: Vec<&str> = names
        .iter()
        .zip(&losses)
        .filter(|(_, l)| l.is_none())
        .map(|(n, _)| *n)
        .collect();
    if ok && !missing.is_empty() {
        diags.push(
            Diagnostic::error(
                codes::CHECK_OUTPUT_WITHOUT_LOSS,
                format!(
                    "output{} {} of model `{}` {} no loss",
                    if missing.len() == 1 { "" } else { "s" },
                    quoted(&missing),
                    model.name,
                    if missing.len() == 1 { "has" } else { "have" }
                ),
            )
            .primary(file, setting_span(loss_setting), "no loss here for it")
            .note(format!("the model's outputs are {}", quoted(&names)))
            .help(format!(
                "add e.g. `{}: mse` to the `loss` line, or give one loss for every output",
                missing.first().copied().unwrap_or_default()
            )),
        );
        ok = false;
    }
    let mut factors = vec![1.0; n];
    if let Some(w) = weights {
        ok &= loss_weights(file, w, &names, &mut factors, diags);
    }
    let mut per_output = vec![Vec::new(); n];
    if let Some(m) = metrics_setting {
        match keyed(file, m, &names, diags) {
            Some(Keyed::Every) => match metrics(file, m, diags) {
                Some(ms) => per_output.iter_mut().for_each(|x| x.clone_from(&ms)),
                None => ok = false,
            },
            Some(Keyed::PerOutput(args)) => {
                for (k, a) in args {
                    match metrics(file, &as_setting(m, a), diags) {
                        Some(ms) => per_output[k] = ms,
                        None => ok = false,
                    }
                }
            }
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    names
        .iter()
        .zip(losses)
        .zip(factors)
        .zip(per_output)
        .map(|(((name, l), weight), metrics)| {
            Some(OutputTrain {
                name: (*name).to_string(),
                loss: l?,
                weight,
                metrics,
            })
        })
        .collect()
}

/// `loss_weights digit: 1.0, parity: 0.5`: a finite factor `>= 0` per named output.
fn loss_weights(
    file: FileId,
    s: &Setting,
    names: &[&str],
    factors: &mut [f64],
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let args = match keyed(file, s, names, diags) {
        Some(Keyed::PerOutput(args)) => args,
        Some(Keyed::Every) => {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_ARGUMENT_TYPE,
                    "`loss_weights` gives each output's weight by name",
                )
                .primary(file, setting_span(s), "not named after outputs")
                .help(format!(
                    "write e.g. `loss_weights {}: 1.0`",
                    names.join(": 1.0, ")
                )),
            );
            return false;
        }
        None => return false,
    };
    let mut ok = true;
    for (k, a) in args {
        let ExprKind::Number(number) = &a.value.kind else {
            diags.push(
                Diagnostic::error(codes::CHECK_ARGUMENT_TYPE, "a loss weight is a number")
                    .primary(file, a.value.span, "not a number")
                    .note("expected a number >= 0, e.g. `0.5`"),
            );
            ok = false;
            continue;
        };
        let value = number.value;
        if !(value.is_finite() && value >= 0.0) {
            diags.push(
                Diagnostic::error(codes::CHECK_ARGUMENT_RANGE, "a loss weight is at least 0")
                    .primary(file, a.value.span, format!("{value} is out of range"))
                    .note("expected a finite number >= 0 (0 leaves the output untrained)"),
            );
            ok = false;
            continue;
        }
        if let Some(f) = factors.get_mut(k) {
            *f = value;
        }
    }
    ok
}

/// `loss_weights` on a model with one output (E0527): there is no output to name.
pub(super) fn weights_need_outputs(file: FileId, s: &Setting, diags: &mut Vec<Diagnostic>) {
    diags.push(
        Diagnostic::error(
            codes::CHECK_OUTPUT_KEY,
            "`loss_weights` weighs the outputs of a model with several, this model has one",
        )
        .primary(file, setting_span(s), "no outputs to weigh")
        .help("remove the line, or declare named outputs: `-> (a: ..., b: ...)`"),
    );
}

/// The settings of a train block for a model with several outputs, for the checks against the
/// model's outputs and the data.
pub(super) struct Fit<'a> {
    pub file: FileId,
    pub model: &'a CheckedModel,
    pub loss: &'a Setting,
    pub metrics: Option<&'a Setting>,
    pub class_weight: Option<&'a Setting>,
    pub target: Option<&'a Setting>,
}

impl Fit<'_> {
    /// The span of what was written for output `name` in `s`: its keyed argument, else the
    /// whole setting (one value for every output).
    fn span_for(s: &Setting, name: &str) -> Span {
        s.args
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|k| k.name == name))
            .map_or_else(|| setting_span(s), |a| a.span)
    }

    /// Each output against its loss and metrics, then the data against the outputs.
    pub(super) fn check(
        &self,
        outputs: &[OutputTrain],
        data: Option<&DataFacts>,
        diags: &mut Vec<Diagnostic>,
    ) {
        let file = self.file;
        for (k, o) in outputs.iter().enumerate() {
            let Some(view) = self.model.for_output(k) else {
                continue;
            };
            let span = Self::span_for(self.loss, &o.name);
            let found = diags.len();
            check_loss_output(file, &o.loss, span, &view, diags);
            if diags.len() == found {
                check_loss_activation(file, &o.loss, span, &view, diags);
            }
            if let Some(m) = self.metrics {
                let own = m
                    .args
                    .iter()
                    .find(|a| a.name.as_ref().is_some_and(|key| key.name == o.name))
                    .map(|a| as_setting(m, a));
                let setting = own.as_ref().unwrap_or(m);
                check_metrics_fit(file, &o.metrics, setting, &o.loss, span, &view, diags);
            }
        }
        if let Some(w) = self.class_weight {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_CLASS_WEIGHT,
                    "`class_weight` applies to a model with one output",
                )
                .primary(file, setting_span(w), "the model has several outputs")
                .note(format!("the outputs are {}", self.names()))
                .help("remove `class_weight`; weigh the outputs' losses with `loss_weights`"),
            );
        }
        let Some(data) = data else { return };
        check_features(file, data, self.model, diags);
        self.check_targets(outputs, data, diags);
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.model.outputs.iter().map(|o| o.name.as_str()).collect();
        quoted(&names)
    }

    /// The label sets the data yields against the outputs (E0529): one per output, matched in
    /// order, as Keras matches a list of targets to a list of outputs; then each output's loss
    /// against its labels (E0502/E0503, at that output's `loss` key and its `label:` entry).
    fn check_targets(
        &self,
        outputs: &[OutputTrain],
        data: &DataFacts,
        diags: &mut Vec<Diagnostic>,
    ) {
        let file = self.file;
        let sets: Vec<&LabelFacts> = data.labels.iter().chain(&data.more_labels).collect();
        let (count, at, what) = match (self.target, sets.first()) {
            (Some(t), _) => (
                1,
                setting_span(t),
                "`target inputs` gives 1 target".to_string(),
            ),
            // The whole `label:` list (its entries, first to last).
            (None, Some(l)) => (
                sets.len(),
                sets.iter().skip(1).fold(l.span, |at, s| at.to(s.span)),
                format!(
                    "this source yields {} label column{}",
                    sets.len(),
                    if sets.len() == 1 { "" } else { "s" }
                ),
            ),
            (None, None) => (
                0,
                data.source_span,
                "this source yields no labels".to_string(),
            ),
        };
        if count == outputs.len() && self.target.is_none() {
            for (k, (o, labels)) in outputs.iter().zip(sets).enumerate() {
                if let Some(view) = self.model.for_output(k) {
                    let span = Self::span_for(self.loss, &o.name);
                    check_labels(file, labels, &view, o.loss, span, diags);
                }
            }
            return;
        }
        if count == outputs.len() {
            return;
        }
        let mut d = Diagnostic::error(
            codes::CHECK_OUTPUT_LABELS,
            format!(
                "model `{}` has {} outputs, the data `{}` gives {count} target{}",
                self.model.name,
                outputs.len(),
                data.name,
                if count == 1 { "" } else { "s" }
            ),
        )
        .primary(file, at, what);
        for o in &self.model.outputs {
            d = d.secondary(file, o.span, format!("output `{}`", o.name));
        }
        diags.push(
            d.note("each output is trained against its own labels, matched in order")
                .help(format!(
                    "give one label column per output, in the outputs' order: \
                     `csv(..., label: [{}])` (other sources yield one label set)",
                    self.model
                        .outputs
                        .iter()
                        .map(|o| format!("\"{}\"", o.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
        );
    }
}
