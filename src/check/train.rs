//! `train` blocks: model and data names, every setting against its signature, and how the
//! loss fits the model's output (see `train_fit.rs` for the data ↔ model checks).
//!
//! Input: an `ast::TrainDef`, the names of the file's blocks and the checked models. Output: a
//! [`CheckedTrain`] when the block has no errors, diagnostics either way.

use super::signature::{
    self as sig, float, int_min, kw, pos, BoundArgs, Default, Kind, Limit, Param, Signature,
};
use super::train_fit::{self, DataFacts};
use super::train_loss;
use super::train_metrics;
use super::train_monitor;
use super::train_optimizer::optimizer;
use super::train_outputs;
use super::train_schedule;
use super::train_target;
use super::train_trainable;
use super::train_types::{CheckedTrain, Loss, LossKind, OutputTrain, Target};
use super::types::CheckedModel;
use crate::diag::suggest;
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::syntax::ast::{self, Arg, ExprKind, Setting};
use std::collections::HashMap;

/// The settings a train block accepts.
pub const SETTINGS: &[&str] = &[
    "loss",
    "optimizer",
    "schedule",
    "epochs",
    "metrics",
    "seed",
    "early_stopping",
    "checkpoint",
    "init",
    "class_weight",
    "target",
    "loss_weights",
];

pub(super) const POSITIVE: Kind = float(Limit::Excl(0.0), Limit::None);
const NO_ARGS: &[Param] = &[];
const FROM_LOGITS: &[Param] = &[kw("from_logits", Kind::Bool, Default::Bool(false))];
/// Binary and categorical cross-entropy (Keras's have `label_smoothing`; its sparse one has not).
const SMOOTHED_CROSSENTROPY: &[Param] = &[
    kw("from_logits", Kind::Bool, Default::Bool(false)),
    kw(
        "label_smoothing",
        float(Limit::Incl(0.0), Limit::Incl(1.0)),
        Default::Float(0.0),
    ),
];
const HUBER: &[Param] = &[kw("delta", POSITIVE, Default::Float(1.0))];

const EPOCHS: &[Param] = &[pos("epochs", int_min(1), Default::Required)];
const SEED: &[Param] = &[pos("seed", int_min(0), Default::Required)];
const CHECKPOINT: &[Param] = &[kw("every", int_min(1), Default::Required)];
const INIT: &[Param] = &[pos("path", Kind::Str, Default::Required)];
pub use super::train_optimizer::OPTIMIZERS;
pub use train_schedule::SCHEDULES;

/// What the train checker knows about the rest of the file.
pub struct Context<'a> {
    pub models: &'a HashMap<String, Option<CheckedModel>>,
    pub model_names: Vec<&'a str>,
    pub data: &'a HashMap<String, &'a ast::DataDef>,
    /// What each data block that checks yields (see [`data_facts`]).
    pub facts: &'a HashMap<String, DataFacts>,
}

/// Checks one train block.
pub fn check_train(
    file: FileId,
    def: &ast::TrainDef,
    cx: &Context<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<CheckedTrain> {
    let before = diags.iter().filter(|d| d.is_error()).count();
    let model = resolve_model(file, def, cx, diags);
    let data_def = resolve_data(file, def, cx, diags);
    let mut seen: HashMap<&str, &Setting> = HashMap::new();
    for s in &def.settings {
        if !SETTINGS.contains(&s.key.name.as_str()) {
            let mut d = Diagnostic::error(
                codes::CHECK_UNKNOWN_SETTING,
                format!("unknown train setting `{}`", s.key.name),
            )
            .primary(file, s.key.span, "not a train setting");
            if let Some(h) =
                suggest::help_for(&s.key.name, SETTINGS.iter().copied(), "the settings are")
            {
                d = d.help(h);
            }
            diags.push(d);
        } else if let Some(first) = seen.get(s.key.name.as_str()) {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_DUPLICATE_SETTING,
                    format!("`{}` is set twice", s.key.name),
                )
                .primary(file, s.key.span, "set again here")
                .secondary(file, first.key.span, "first set here")
                .help("keep one of them"),
            );
        } else {
            seen.insert(&s.key.name, s);
        }
    }
    let header = def
        .alias
        .as_ref()
        .map_or(def.model.span, |a| a.span)
        .to(def.model.span);
    let require = |key: &str, diags: &mut Vec<Diagnostic>| {
        let s = seen.get(key).copied();
        if s.is_none() {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_MISSING_SETTING,
                    format!("train block `{}` has no `{key}`", def.model.name),
                )
                .primary(file, header, format!("`{key}` is missing"))
                .help(match key {
                    "loss" => "add e.g. `loss sparse_categorical_crossentropy`",
                    "optimizer" => "add e.g. `optimizer adam(lr: 1e-3)`",
                    _ => "add e.g. `epochs 10`",
                }),
            );
        }
        s
    };
    let loss_setting = require("loss", diags);
    let opt_setting = require("optimizer", diags);
    let epochs_setting = require("epochs", diags);
    // A model with several outputs reads `loss`, `loss_weights` and `metrics` per output.
    let several = model.flatten().filter(|m| m.outputs.len() > 1);
    let outputs = if let Some(m) = several {
        loss_setting.and_then(|ls| {
            train_outputs::read(
                file,
                m,
                ls,
                seen.get("loss_weights").copied(),
                seen.get("metrics").copied(),
                diags,
            )
        })
    } else {
        if let Some(w) = seen.get("loss_weights") {
            train_outputs::weights_need_outputs(file, w, diags);
        }
        Some(Vec::new())
    };
    let loss = match several {
        Some(_) => outputs.as_ref().and_then(|o| o.first()).map(|o| o.loss),
        None => loss_setting.and_then(|s| loss(file, s, diags)),
    };
    let optimizer = opt_setting.and_then(|s| optimizer(file, s, diags));
    let epochs = epochs_setting
        .and_then(|s| bind_setting(file, s, EPOCHS, diags))
        .map(|b| b.int("epochs") as u64);
    let metrics = match (several, seen.get("metrics")) {
        (None, Some(s)) => train_metrics::metrics(file, s, diags),
        _ => Some(Vec::new()),
    };
    let class_weight = seen
        .get("class_weight")
        .map(|s| train_metrics::class_weight(file, s, diags));
    let target = seen.get("target").map_or(Some(Target::Labels), |s| {
        train_target::target(file, s, diags)
    });
    let seed = seen.get("seed").map_or(Some(0), |s| {
        bind_setting(file, s, SEED, diags).map(|b| b.int("seed") as u64)
    });
    let facts = data_def.and_then(|d| cx.facts.get(&d.name.name));
    let logged = metrics.as_deref().map(|m| {
        let span = seen.get("metrics").map_or(header, |s| s.span);
        (m, span)
    });
    // A model with several outputs also logs `digit_loss`, `digit_accuracy`, ... to monitor.
    let logged_names = outputs
        .as_deref()
        .map(OutputTrain::logged_names)
        .unwrap_or_default();
    let early_stopping = seen
        .get("early_stopping")
        .map(|s| train_monitor::early_stopping(file, s, logged, facts, &logged_names, diags));
    let schedule = seen.get("schedule").map_or(Some(Vec::new()), |s| {
        train_schedule::schedule(file, s, logged, facts, &logged_names, diags)
    });
    let checkpoint = seen
        .get("checkpoint")
        .map(|s| bind_setting(file, s, CHECKPOINT, diags).map(|b| b.int("every") as u64));
    let init = seen
        .get("init")
        .map(|s| bind_setting(file, s, INIT, diags).map(|b| b.name("path").to_string()));

    if let (Some(m), Some(outs), Some(ls)) = (several, &outputs, loss_setting) {
        train_trainable::check_trainable(file, m, header, diags);
        let fit = train_outputs::Fit {
            file,
            model: m,
            loss: ls,
            metrics: seen.get("metrics").copied(),
            class_weight: seen.get("class_weight").copied(),
            target: seen.get("target").copied(),
        };
        fit.check(outs, facts, diags);
    }
    if let (None, Some(Some(m)), Some(l), Some(ls)) = (several, model, loss, loss_setting) {
        let loss_span = ls
            .args
            .iter()
            .fold(ls.key.span, |acc, a| acc.to(a.value.span));
        train_trainable::check_trainable(file, m, header, diags);
        let found = diags.len();
        train_loss::check_loss_output(file, &l, loss_span, m, diags);
        if diags.len() == found {
            train_loss::check_loss_activation(file, &l, loss_span, m, diags);
        }
        let target_setting = seen
            .get("target")
            .filter(|_| target == Some(Target::Inputs));
        if let Some(t) = target_setting {
            let weights = seen.get("class_weight").copied();
            train_target::check_settings(file, t, (&l, loss_span), weights, diags);
        }
        // a `target` that does not bind is reported; the data's targets are then unknown
        if let (Some(facts), Some(_)) = (facts, target) {
            train_fit::check_data(
                file,
                facts,
                m,
                (&l, loss_span),
                target_setting.copied(),
                diags,
            );
        }
        if let (Some(ms), Some(s)) = (&metrics, seen.get("metrics")) {
            train_metrics::check_metrics_fit(file, ms, s, &l, loss_span, m, diags);
        }
        if let (Some(Some(w)), Some(s), None) =
            (&class_weight, seen.get("class_weight"), target_setting)
        {
            train_metrics::check_class_weight_fit(file, w, s, &l, loss_span, m, diags);
        }
    }
    if diags.iter().filter(|d| d.is_error()).count() != before {
        return None;
    }
    Some(CheckedTrain {
        name: def.alias.as_ref().unwrap_or(&def.model).name.clone(),
        model: def.model.name.clone(),
        data: def.data.name.clone(),
        loss: loss?,
        optimizer: optimizer?,
        schedule: schedule?,
        epochs: epochs?,
        metrics: metrics?,
        target: target?,
        class_weight: class_weight.flatten(),
        seed: seed?,
        early_stopping: early_stopping.flatten(),
        checkpoint_every: checkpoint.flatten(),
        init: init.flatten(),
        outputs: outputs?,
        span: def.span,
    })
}

/// The facts the cross-block check needs from a data pipeline: its element type (after
/// preprocessing), its labels if it has any, whether it holds out validation data, and the steps
/// that fixed them. `None` when the features' shape is not known statically (reported by the
/// data checker).
pub fn data_facts(spec: &crate::data::PipelineSpec) -> Option<DataFacts> {
    use super::train_fit::LabelFacts;
    use super::types::DType;
    use crate::data::typing::{self, LabelKind};
    let dtype = |d: typing::DType| match d {
        typing::DType::F32 => DType::F32,
        typing::DType::I64 => DType::I64,
    };
    let element = crate::data::element_type(spec).ok()?;
    let steps = typing::step_types(spec).ok()?;
    // The last step that changed the feature shape or dtype fixed it (else the source did).
    let mut feature_span = steps.first().map_or(spec.span, |s| s.span);
    for pair in steps.windows(2) {
        if pair[0].shape != pair[1].shape || pair[0].dtype != pair[1].dtype {
            feature_span = pair[1].span;
        }
    }
    let mut label_span = steps.first().map_or(spec.span, |s| s.span);
    for pair in steps.windows(2) {
        if pair[0].label != pair[1].label {
            label_span = pair[1].span;
        }
    }
    let facts = |label: &typing::LabelType, span| LabelFacts {
        dtype: dtype(label.dtype),
        shape: label.shape.clone(),
        num_classes: match label.kind {
            LabelKind::Class { classes } => classes.map(|c| c as usize),
            LabelKind::OneHot { classes } => Some(classes as usize),
            LabelKind::Value => None,
        },
        span,
    };
    // A `label:` list: each set is located at its entry (the first too, when no step changed it).
    let entry_spans = match &spec.source.kind {
        crate::data::spec::SourceKind::Csv(c) => c.label_spans.clone(),
        _ => Vec::new(),
    };
    let first_span = match entry_spans.first() {
        Some(&s) if label_span == spec.source.span => s,
        _ => label_span,
    };
    let labels = element.label.as_ref().map(|label| facts(label, first_span));
    let more_labels = element
        .more_labels
        .iter()
        .enumerate()
        .map(|(k, l)| facts(l, entry_spans.get(k + 1).copied().unwrap_or(label_span)))
        .collect();
    Some(DataFacts {
        name: spec.name.clone(),
        features_dtype: dtype(element.dtype),
        features_shape: element.shape.clone(),
        feature_span,
        labels,
        more_labels,
        source_span: spec.source.span,
        inputs: super::train_inputs::input_facts(spec)?,
        validation: spec
            .split
            .as_ref()
            .filter(|s| s.validation > 0.0)
            .map(|s| s.span),
    })
}

/// `None`: the name is unknown (reported); `Some(None)`: the model exists but has errors.
#[allow(clippy::option_option)]
fn resolve_model<'a>(
    file: FileId,
    def: &ast::TrainDef,
    cx: &'a Context<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Option<&'a CheckedModel>> {
    if let Some(m) = cx.models.get(&def.model.name) {
        return Some(m.as_ref());
    }
    let mut d = Diagnostic::error(
        codes::CHECK_UNKNOWN_MODEL,
        format!("unknown model `{}`", def.model.name),
    )
    .primary(file, def.model.span, "no model of this name in the file");
    if let Some(h) = suggest::help_for(
        &def.model.name,
        cx.model_names.iter().copied(),
        "the models are",
    ) {
        d = d.help(h);
    }
    diags.push(d);
    None
}

fn resolve_data<'a>(
    file: FileId,
    def: &ast::TrainDef,
    cx: &Context<'a>,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'a ast::DataDef> {
    if let Some(d) = cx.data.get(&def.data.name) {
        return Some(*d);
    }
    let mut d = Diagnostic::error(
        codes::CHECK_UNKNOWN_DATA,
        format!("unknown data pipeline `{}`", def.data.name),
    )
    .primary(
        file,
        def.data.span,
        "no data block of this name in the file",
    );
    if let Some(h) = suggest::help_for(
        &def.data.name,
        cx.data.keys().map(String::as_str),
        "the data blocks are",
    ) {
        d = d.help(h);
    }
    diags.push(d);
    None
}

fn bind_setting(
    file: FileId,
    s: &Setting,
    params: &'static [Param],
    diags: &mut Vec<Diagnostic>,
) -> Option<BoundArgs> {
    sig::bind(
        file,
        &Signature { params },
        &format!("`{}`", s.key.name),
        &s.args,
        s.span,
        diags,
    )
}

/// `key name` or `key name(args)`: the chosen name, its span and arguments.
pub(super) fn choice_of<'s>(
    file: FileId,
    s: &'s Setting,
    choices: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> Option<(&'s str, &'s [Arg], Span)> {
    let expected = format!("one of {}", choices.join(", "));
    match s.args.as_slice() {
        [a] if a.name.is_none() => choice_in(file, &s.key.name, &a.value, s.span, choices, diags),
        _ => return_type_error(file, s, &expected, diags),
    }
}

/// One value of a `key` setting that names a choice: `name` or `name(args)`, the chosen name,
/// its span and arguments; `at` is where a value of another kind is reported.
pub(super) fn choice_in<'s>(
    file: FileId,
    key: &str,
    value: &'s ast::Expr,
    at: Span,
    choices: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> Option<(&'s str, &'s [Arg], Span)> {
    let expected = format!("one of {}", choices.join(", "));
    let (ident, args) = match &value.kind {
        ExprKind::Name(n) => (n, &[][..]),
        ExprKind::Call(c) => (&c.callee, c.args.as_slice()),
        _ => {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_ARGUMENT_TYPE,
                    format!("`{key}` takes one name"),
                )
                .primary(file, at, "not a name or a call")
                .note(format!("expected {expected}")),
            );
            return None;
        }
    };
    if choices.contains(&ident.name.as_str()) {
        return Some((ident.name.as_str(), args, ident.span));
    }
    let mut d = Diagnostic::error(
        codes::CHECK_UNKNOWN_CHOICE,
        format!("unknown {key} `{}`", ident.name),
    )
    .primary(file, ident.span, format!("not a known {key}"))
    .note(format!("expected {expected}"));
    if let Some(c) = suggest::closest(&ident.name, choices.iter().copied()) {
        d = d.help(format!("did you mean `{c}`?"));
    }
    diags.push(d);
    None
}

fn return_type_error<T>(
    file: FileId,
    s: &Setting,
    expected: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    diags.push(
        Diagnostic::error(
            codes::CHECK_ARGUMENT_TYPE,
            format!("`{}` takes one name", s.key.name),
        )
        .primary(file, s.span, "not a name or a call")
        .note(format!("expected {expected}")),
    );
    None
}

/// The options a loss takes.
pub fn loss_params(kind: LossKind) -> &'static [Param] {
    match kind {
        LossKind::Huber => HUBER,
        LossKind::BinaryCrossentropy | LossKind::CategoricalCrossentropy => SMOOTHED_CROSSENTROPY,
        LossKind::SparseCategoricalCrossentropy => FROM_LOGITS,
        LossKind::Mse | LossKind::Mae | LossKind::LogCosh => NO_ARGS,
    }
}

pub(super) fn loss(file: FileId, s: &Setting, diags: &mut Vec<Diagnostic>) -> Option<Loss> {
    let names: Vec<&str> = LossKind::ALL.iter().map(|(n, _)| *n).collect();
    let (name, args, span) = choice_of(file, s, &names, diags)?;
    bind_loss(file, name, args, span, diags)
}

/// One loss written as a value (`digit: sparse_categorical_crossentropy` in a `loss` line of a
/// model with several outputs); `at` is where a value of another kind is reported.
pub(super) fn loss_value(
    file: FileId,
    value: &ast::Expr,
    at: Span,
    diags: &mut Vec<Diagnostic>,
) -> Option<Loss> {
    let names: Vec<&str> = LossKind::ALL.iter().map(|(n, _)| *n).collect();
    let (name, args, span) = choice_in(file, "loss", value, at, &names, diags)?;
    bind_loss(file, name, args, span, diags)
}

fn bind_loss(
    file: FileId,
    name: &str,
    args: &[Arg],
    span: Span,
    diags: &mut Vec<Diagnostic>,
) -> Option<Loss> {
    let kind = LossKind::from_name(name)?;
    let params = loss_params(kind);
    let b = sig::bind(
        file,
        &Signature { params },
        &format!("loss `{name}`"),
        args,
        span,
        diags,
    )?;
    Some(Loss {
        kind,
        from_logits: b.bool("from_logits"),
        delta: b.opt_float("delta").unwrap_or(1.0),
        label_smoothing: b.opt_float("label_smoothing").unwrap_or(0.0),
    })
}
