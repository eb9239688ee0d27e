//! Reading an experiment's lines: `base`, `repeat`, `select`, the fixed settings and the
//! `vary` lines, each key checked against the settings a train or data block accepts.

use super::Selection;
use crate::check::train::SETTINGS as TRAIN_SETTINGS;
use crate::check::train_types::CheckedTrain;
use crate::data::lower::SETTINGS as DATA_SETTINGS;
use crate::data::PipelineSpec;
use crate::diag::{codes, suggest, Diagnostic, FileId, Span};
use crate::syntax::ast::{self, Arg, ExperimentLine, ExprKind, Ident};

/// A setting a trial changes: its key as written (`optimizer`, `data.batch`, `model`) and its
/// new arguments, `None` to remove it (`none`).
#[derive(Clone, Debug)]
pub struct Change {
    pub key: Ident,
    pub args: Option<Vec<Arg>>,
    /// Where the value is written.
    pub span: Span,
}

/// One `vary` line: per value, the change of each of its keys.
pub struct Axis<'a> {
    pub vary: &'a ast::Vary,
    pub values: Vec<Vec<Change>>,
}

/// What an experiment's lines say.
pub struct Read<'a> {
    pub base: &'a ast::TrainDef,
    pub repeat: u64,
    pub select: Option<&'a ast::Select>,
    pub fixed: Vec<Change>,
    pub axes: Vec<Axis<'a>>,
}

impl Read<'_> {
    /// The varied keys, in order.
    pub fn axes(&self) -> Vec<String> {
        self.axes
            .iter()
            .flat_map(|a| a.vary.axes.iter().map(|k| k.name.clone()))
            .collect()
    }
}

/// Every key `vary` and a fixed line accept.
fn keys() -> Vec<String> {
    let mut all: Vec<String> = TRAIN_SETTINGS.iter().map(|s| (*s).to_string()).collect();
    all.push("model".to_string());
    all.extend(DATA_SETTINGS.iter().map(|s| format!("data.{s}")));
    all
}

fn known(key: &str) -> bool {
    key == "model"
        || TRAIN_SETTINGS.contains(&key)
        || key
            .strip_prefix("data.")
            .is_some_and(|k| DATA_SETTINGS.contains(&k))
}

/// Reads the lines; `None` when there is no base to start from.
pub fn read<'a>(
    file: FileId,
    ast: &'a ast::File,
    x: &'a ast::ExperimentDef,
    diags: &mut Vec<Diagnostic>,
) -> Option<Read<'a>> {
    let mut base: Option<(&ast::Setting, Option<&'a ast::TrainDef>)> = None;
    let mut repeat: Option<(&ast::Setting, u64)> = None;
    let mut select: Option<&ast::Select> = None;
    let mut fixed = Vec::new();
    let mut axes = Vec::new();
    // Where each key was first set or varied.
    let mut used: Vec<(String, Span)> = Vec::new();
    let mut once = |key: &Ident, diags: &mut Vec<Diagnostic>| {
        if let Some((_, first)) = used.iter().find(|(k, _)| *k == key.name) {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_DUPLICATE_SETTING,
                    format!("experiment `{}` sets `{}` twice", x.name.name, key.name),
                )
                .primary(file, key.span, "set again here")
                .secondary(file, *first, "first set here")
                .help("a setting is either fixed or varied, once; to try several values, list them all in one `vary` line"),
            );
            false
        } else {
            used.push((key.name.clone(), key.span));
            true
        }
    };
    for line in &x.lines {
        match line {
            ExperimentLine::Setting(s) if s.key.name == "base" => {
                if once(&s.key, diags) {
                    base = Some((s, base_block(file, ast, s, diags)));
                }
            }
            ExperimentLine::Setting(s) if s.key.name == "repeat" => {
                if once(&s.key, diags) {
                    repeat = repeat_count(file, s, diags).map(|n| (s, n));
                }
            }
            ExperimentLine::Setting(s) => {
                if key_known(file, &s.key, diags) && once(&s.key, diags) {
                    fixed.push(change(&s.key, &s.args, s.span));
                }
            }
            ExperimentLine::Select(s) => {
                let key = Ident {
                    name: "select".to_string(),
                    span: Span::new(s.span.start, s.span.start + "select".len()),
                };
                if once(&key, diags) {
                    select = Some(s);
                }
            }
            ExperimentLine::Vary(v) => {
                let mut fine = true;
                for key in &v.axes {
                    fine &= key_known(file, key, diags) && once(key, diags);
                }
                if fine {
                    if let Some(values) = vary_values(file, v, diags) {
                        axes.push(Axis { vary: v, values });
                    }
                }
            }
        }
    }
    let Some((_, Some(base))) = base else {
        if base.is_none() {
            diags.push(
                Diagnostic::error(
                    codes::CHECK_EXPERIMENT_BASE,
                    format!("experiment `{}` has no `base`", x.name.name),
                )
                .primary(file, x.name.span, "which train block do its trials start from?")
                .help("add a line `base NAME` naming a train block (its model's name, or its `as` name)"),
            );
        }
        return None;
    };
    Some(Read {
        base,
        repeat: repeat.map_or(1, |(_, n)| n),
        select,
        fixed,
        axes,
    })
}

/// The train block `base NAME` names, or an error.
fn base_block<'a>(
    file: FileId,
    ast: &'a ast::File,
    s: &ast::Setting,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'a ast::TrainDef> {
    let trains: Vec<&ast::TrainDef> = ast
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Train(t) => Some(t),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = trains
        .iter()
        .map(|t| t.alias.as_ref().unwrap_or(&t.model).name.as_str())
        .collect();
    let [Arg {
        name: None,
        value: ast::Expr {
            kind: ExprKind::Name(name),
            ..
        },
        ..
    }] = s.args.as_slice()
    else {
        diags.push(
            Diagnostic::error(
                codes::CHECK_EXPERIMENT_BASE,
                "`base` takes the name of a train block",
            )
            .primary(file, s.span, "not one train block's name")
            .help(format!(
                "write `base NAME`; the train blocks are: {}",
                names.join(", ")
            )),
        );
        return None;
    };
    if let Some(i) = names.iter().position(|n| *n == name.name) {
        return trains.get(i).copied();
    }
    let mut d = Diagnostic::error(
        codes::CHECK_EXPERIMENT_BASE,
        format!("there is no train block named `{}`", name.name),
    )
    .primary(file, name.span, "not a train block of this file");
    d = match suggest::help_for(&name.name, names.iter().copied(), "the train blocks are") {
        Some(h) => d.help(h),
        None => d.help("a train block is named by its model, or by its `as` name"),
    };
    diags.push(d);
    None
}

/// `repeat K`: a whole number of at least 1.
fn repeat_count(file: FileId, s: &ast::Setting, diags: &mut Vec<Diagnostic>) -> Option<u64> {
    if let [Arg {
        name: None,
        value: ast::Expr {
            kind: ExprKind::Number(n),
            span,
        },
        ..
    }] = s.args.as_slice()
    {
        return match n.int {
            Some(k) if k >= 1 => u64::try_from(k).ok(),
            Some(_) => {
                diags.push(
                    Diagnostic::error(codes::CHECK_ARGUMENT_RANGE, "`repeat` must be at least 1")
                        .primary(file, *span, "no trial would run")
                        .help("`repeat 1` runs each configuration once, with the base's seed"),
                );
                None
            }
            None => {
                diags.push(
                    Diagnostic::error(codes::CHECK_ARGUMENT_TYPE, "`repeat` takes a whole number")
                        .primary(file, *span, "not a whole number")
                        .help("write the number of seeds per configuration: `repeat 3`"),
                );
                None
            }
        };
    }
    diags.push(
        Diagnostic::error(
            codes::CHECK_ARGUMENT_TYPE,
            "`repeat` takes one whole number",
        )
        .primary(file, s.span, "expected `repeat K`")
        .help("write the number of seeds per configuration: `repeat 3`"),
    );
    None
}

/// Whether `key` is a setting an experiment can fix or vary; an error when it is not.
pub fn key_known(file: FileId, key: &Ident, diags: &mut Vec<Diagnostic>) -> bool {
    if known(&key.name) {
        return true;
    }
    let all = keys();
    let mut d = Diagnostic::error(
        codes::CHECK_EXPERIMENT_SETTING,
        format!("`{}` is not a setting of a train or data block", key.name),
    )
    .primary(file, key.span, "not a train or data setting");
    let help = suggest::help_for(&key.name, all.iter().map(String::as_str), "the settings are")
        .unwrap_or_else(|| {
            "an experiment sets `base`, `repeat`, `select`, `model`, any train setting (`optimizer`, `epochs`, ...) and any data setting as `data.` + its keyword (`data.batch`)".to_string()
        });
    d = d.help(help);
    diags.push(d);
    false
}

/// A change from a setting's arguments: a lone `none` removes the setting.
pub fn change(key: &Ident, args: &[Arg], span: Span) -> Change {
    let none = matches!(args, [Arg { name: None, value: ast::Expr { kind: ExprKind::Name(n), .. }, .. }] if n.name == "none");
    Change {
        key: key.clone(),
        args: (!none).then(|| args.to_vec()),
        span,
    }
}

/// The changes each value of a `vary` line makes (one per key); errors for an empty list and
/// a tuple whose length is not the number of tied keys.
fn vary_values(
    file: FileId,
    v: &ast::Vary,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Vec<Change>>> {
    let keys: Vec<&str> = v.axes.iter().map(|k| k.name.as_str()).collect();
    if v.values.is_empty() {
        diags.push(
            Diagnostic::error(
                codes::CHECK_EXPERIMENT_EMPTY,
                format!("`vary {}` lists no values", keys.join(", ")),
            )
            .primary(file, v.span, "no trial could run")
            .help("list the values to try, at least one: `vary optimizer: [sgd(lr: 0.1), adam()]`"),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut fine = true;
    for value in &v.values {
        if !v.tied || v.axes.len() == 1 {
            out.push(
                v.axes
                    .iter()
                    .map(|k| change(k, &value.args, value.span))
                    .collect(),
            );
            continue;
        }
        if !value.grouped || value.args.len() != v.axes.len() {
            let found = if value.grouped { value.args.len() } else { 1 };
            diags.push(
                Diagnostic::error(
                    codes::CHECK_EXPERIMENT_TUPLE,
                    format!(
                        "a value of `vary ({})` has {found} item{}, not {}",
                        keys.join(", "),
                        if found == 1 { "" } else { "s" },
                        v.axes.len()
                    ),
                )
                .primary(
                    file,
                    value.span,
                    format!("{found} item{}", if found == 1 { "" } else { "s" }),
                )
                .secondary(
                    file,
                    v.axes
                        .first()
                        .map_or(v.span, |k| k.span)
                        .to(v.axes.last().map_or(v.span, |k| k.span)),
                    format!("{} settings tied together", v.axes.len()),
                )
                .help(format!(
                    "give one value per tied setting, in order: `({})`",
                    keys.join(", ")
                )),
            );
            fine = false;
            continue;
        }
        out.push(
            v.axes
                .iter()
                .zip(&value.args)
                .map(|(k, a)| change(k, std::slice::from_ref(a), a.span))
                .collect(),
        );
    }
    fine.then_some(out)
}

/// The selection of the best configuration, checked against what every trial logs: the loss,
/// and each of its metrics, on the training batches and (`val_`) on a validation split.
pub fn selection(
    file: FileId,
    select: Option<&ast::Select>,
    trials: &[(
        &super::expand::Configuration,
        (
            CheckedTrain,
            crate::check::types::CheckedModel,
            PipelineSpec,
        ),
    )],
    diags: &mut Vec<Diagnostic>,
) -> Option<Selection> {
    let all_split = trials.iter().all(|(_, (_, _, p))| p.has_validation());
    let Some(s) = select else {
        let metric = if all_split { "val_loss" } else { "loss" };
        return Some(Selection {
            metric: metric.to_string(),
            maximize: false,
        });
    };
    let maximize = match s.goal.name.as_str() {
        "max" => true,
        "min" => false,
        other => {
            let mut d = Diagnostic::error(
                codes::CHECK_EXPERIMENT_SELECT,
                format!("`select` takes `max` or `min`, not `{other}`"),
            )
            .primary(file, s.goal.span, "not `max` or `min`");
            d = d.help("write `select max val_accuracy` or `select min val_loss`");
            diags.push(d);
            return None;
        }
    };
    let metric = s.metric.name.as_str();
    let plain = metric.strip_prefix("val_").unwrap_or(metric);
    let wants_split = metric.starts_with("val_");
    for (config, (train, _, pipeline)) in trials {
        // A model with several outputs logs `digit_loss`, `digit_accuracy`, ... instead.
        let names: Vec<String> = if train.outputs.is_empty() {
            train.metrics.iter().map(|m| m.name().to_string()).collect()
        } else {
            crate::check::train_types::OutputTrain::logged_names(&train.outputs)
        };
        let logged = plain == "loss" || names.iter().any(|n| n == plain);
        let split = !wants_split || pipeline.has_validation();
        if logged && split {
            continue;
        }
        let why = if logged {
            format!("data `{}` has no validation split", pipeline.name)
        } else {
            format!("train block `{}` does not log `{plain}`", train.name)
        };
        let mut d = Diagnostic::error(
            codes::CHECK_EXPERIMENT_SELECT,
            format!("`select` chooses by `{metric}`, which the trials do not log"),
        )
        .primary(file, s.metric.span, why)
        .note(format!("in trial `{}`", config.display_name()));
        // A typo of a logged value is suggested as such; an unlogged metric is to be added.
        let prefix = if wants_split { "val_" } else { "" };
        let candidates: Vec<String> = std::iter::once("loss".to_string())
            .chain(names)
            .map(|n| format!("{prefix}{n}"))
            .collect();
        let typo = (!logged)
            .then(|| suggest::closest(metric, candidates.iter().map(String::as_str)))
            .flatten();
        d = d.help(match typo {
            Some(near) => format!("did you mean `{near}`?"),
            None if logged => format!(
                "add `data.split validation: 0.2` to the experiment, or select by `{plain}`"
            ),
            None => {
                format!("add `{plain}` to the base's `metrics`, or select by `loss` or `val_loss`")
            }
        });
        diags.push(d);
        return None;
    }
    Some(Selection {
        metric: metric.to_string(),
        maximize,
    })
}
