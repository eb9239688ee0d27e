//! `experiment` blocks: which train block the trials start from, what they vary, how many
//! seeds each configuration runs, how the winner is chosen; then every trial expanded and
//! checked as a whole train block.
//!
//! Input: the file's AST and the diagnostics its own blocks already gave. Output: one
//! [`CheckedExperiment`] per experiment without errors (its trials in run order, each with the
//! checked train block, model and pipeline it trains), diagnostics either way. A variant that
//! does not check is reported once, at the `vary` value that caused it, naming the first trial
//! it breaks (and how many others). Files: `lines` (reading the block's lines), `expand` (the
//! grid, tied axes and trial names), `trial` (a trial's train, model and data blocks, checked).

mod expand;
mod lines;
mod trial;

use super::train_types::CheckedTrain;
use super::types::CheckedModel;
use crate::data::PipelineSpec;
use crate::diag::{Diagnostic, FileId, Span};
use crate::syntax::ast;
pub use expand::MAX_TRIALS;
use std::collections::HashMap;
use std::fmt::Write as _;

/// How the best configuration is chosen: the mean over its repeats of this logged value's
/// best epoch, largest (`max`) or smallest (`min`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// `val_accuracy`, `loss`, ...
    pub metric: String,
    pub maximize: bool,
}

/// An experiment that checked: its trials, ready to run.
#[derive(Clone, Debug)]
pub struct CheckedExperiment {
    pub name: String,
    /// The train block the trials start from.
    pub base: String,
    pub select: Selection,
    /// The varied settings, in the order of the `vary` lines (`optimizer`, `data.batch`).
    pub axes: Vec<String>,
    /// Seeds per configuration.
    pub repeat: u64,
    /// Every trial, in run order: the grid (first `vary` line outermost), then the repeats.
    pub trials: Vec<Trial>,
    pub span: Span,
}

/// One training run of an experiment.
#[derive(Clone, Debug)]
pub struct Trial {
    /// `optimizer=adam,data.batch=32,seed=1`: each varied setting and its value's short label,
    /// then the seed when the experiment repeats; also the name of the trial's folder.
    pub name: String,
    /// The name without the seed: trials that differ only in their seed share it.
    pub configuration: String,
    /// Each varied setting and its value as written canonically (`adam(lr: 0.001)`).
    pub settings: Vec<(String, String)>,
    pub seed: u64,
    pub train: CheckedTrain,
    pub model: CheckedModel,
    pub pipeline: PipelineSpec,
}

/// Checks every experiment of a file. `earlier` holds the diagnostics of the file's other
/// blocks: a trial that only repeats one of them adds nothing.
pub fn check_experiments(
    file: FileId,
    ast: &ast::File,
    earlier: &[Diagnostic],
    diags: &mut Vec<Diagnostic>,
) -> Vec<CheckedExperiment> {
    let mut out = Vec::new();
    for item in &ast.items {
        if let ast::Item::Experiment(x) = item {
            if let Some(checked) = check_experiment(file, ast, x, earlier, diags) {
                out.push(checked);
            }
        }
    }
    out
}

fn check_experiment(
    file: FileId,
    ast: &ast::File,
    x: &ast::ExperimentDef,
    earlier: &[Diagnostic],
    diags: &mut Vec<Diagnostic>,
) -> Option<CheckedExperiment> {
    let before = diags.len();
    let read = lines::read(file, ast, x, diags);
    let configurations = read.as_ref().and_then(|r| expand::grid(file, x, r, diags));
    let (read, configurations) = (read?, configurations?);
    if diags[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    let mut seen: HashMap<(&'static str, String, Option<Span>), usize> = HashMap::new();
    let mut found: Vec<(Diagnostic, usize)> = Vec::new();
    let mut checked = Vec::new();
    for config in &configurations {
        match trial::check(file, ast, read.base, &config.changes) {
            Ok(t) => checked.push((config, t)),
            Err(problems) => {
                for d in problems {
                    let key = (
                        d.code.as_str(),
                        d.message.clone(),
                        d.primary_label().map(|l| l.span),
                    );
                    if earlier.iter().any(|e| {
                        (
                            e.code.as_str(),
                            e.message.clone(),
                            e.primary_label().map(|l| l.span),
                        ) == key
                    }) {
                        continue;
                    }
                    if let Some(&i) = seen.get(&key) {
                        if let Some(entry) = found.get_mut(i) {
                            entry.1 += 1;
                        }
                        continue;
                    }
                    seen.insert(key, found.len());
                    found.push((locate(file, ast, x.span, config, d), 0));
                }
            }
        }
    }
    let failed = found.iter().any(|(d, _)| d.is_error()) || checked.len() < configurations.len();
    for (mut d, others) in found {
        if others > 0 {
            d = d.note(format!(
                "{others} other trial{} of `{}` fail{} the same way",
                if others == 1 { "" } else { "s" },
                x.name.name,
                if others == 1 { "s" } else { "" }
            ));
        }
        diags.push(d);
    }
    if failed {
        return None;
    }
    let select = lines::selection(file, read.select, &checked, diags)?;
    let mut trials = Vec::new();
    for (config, (train, model, pipeline)) in checked {
        for r in 0..read.repeat {
            let seed = train.seed.wrapping_add(r);
            let mut name = config.name.clone();
            if read.repeat > 1 || config.name.is_empty() {
                if !name.is_empty() {
                    name.push(',');
                }
                let _ = write!(name, "seed={seed}");
            }
            let mut train = train.clone();
            train.seed = seed;
            trials.push(Trial {
                name,
                configuration: if config.name.is_empty() {
                    train.name.clone()
                } else {
                    config.name.clone()
                },
                settings: config.settings.clone(),
                seed,
                train,
                model: model.clone(),
                pipeline: pipeline.clone(),
            });
        }
    }
    Some(CheckedExperiment {
        name: x.name.name.clone(),
        base: read
            .base
            .alias
            .as_ref()
            .unwrap_or(&read.base.model)
            .name
            .clone(),
        select,
        axes: read.axes(),
        repeat: read.repeat,
        trials,
        span: x.span,
    })
}

/// The file with `--set` overrides applied to one train block (`name`, or the file's only
/// one) and its data block: each override is a key (`optimizer`, `data.batch`, `model`) and
/// the arguments of the setting it replaces (a lone `none` removes the setting). Other blocks
/// are kept as they are. `Err` for a key no train or data block has, or a `model` that is not
/// a name; the rest is for the checker.
pub fn with_overrides(
    file: FileId,
    ast: &ast::File,
    name: Option<&str>,
    overrides: &[(ast::Ident, Vec<ast::Arg>)],
) -> Result<ast::File, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let changes: Vec<lines::Change> = overrides
        .iter()
        .filter(|(key, _)| lines::key_known(file, key, &mut diags))
        .map(|(key, args)| {
            let span = args.first().map_or(key.span, |a| {
                a.span.to(args.last().map_or(a.span, |l| l.span))
            });
            lines::change(key, args, span)
        })
        .collect();
    if !diags.is_empty() {
        return Err(diags);
    }
    let trains: Vec<&ast::TrainDef> = ast
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Train(t) => Some(t),
            _ => None,
        })
        .filter(|t| name.is_none_or(|n| t.alias.as_ref().unwrap_or(&t.model).name == n))
        .collect();
    let [base] = trains.as_slice() else {
        // No such block, or several to choose from: the command says so.
        return Ok(ast.clone());
    };
    let (data, train) = trial::changed_blocks(file, ast, base, &changes)?;
    let items = ast
        .items
        .iter()
        .map(|item| match item {
            ast::Item::Train(t) if std::ptr::eq(t, *base) => ast::Item::Train(train.clone()),
            ast::Item::Data(d) if data.as_ref().is_some_and(|n| n.name.name == d.name.name) => {
                data.clone().map_or_else(|| item.clone(), ast::Item::Data)
            }
            other => other.clone(),
        })
        .collect();
    Ok(ast::File { items })
}

/// Places a trial's problem in the experiment. A problem whose primary label is outside the
/// block (the base's train header, say) gets its primary label inside: on a label it already
/// has there (the trial's value it names), else on the varied value that most likely caused it
/// (a data setting when it points into a data block, `model` when into a model, else the
/// first varied value); the outside labels stay as context.
fn locate(
    file: FileId,
    ast: &ast::File,
    block: Span,
    config: &expand::Configuration,
    mut d: Diagnostic,
) -> Diagnostic {
    let inside = |s: Span| s.start >= block.start && s.end <= block.end;
    if !d.primary_label().is_some_and(|l| inside(l.span)) {
        let promoted = d.labels.iter().position(|l| inside(l.span));
        for label in &mut d.labels {
            label.primary = false;
        }
        if let Some(i) = promoted {
            if let Some(label) = d.labels.get_mut(i) {
                label.primary = true;
            }
        } else {
            let within = |kind: fn(&ast::Item) -> bool| {
                d.labels.iter().any(|l| {
                    ast.items.iter().any(|item| {
                        kind(item) && {
                            let s = item.span();
                            l.span.start >= s.start && l.span.end <= s.end
                        }
                    })
                })
            };
            let varied = config.changes.get(config.fixed..).unwrap_or_default();
            let pick = |prefix: &str| {
                varied
                    .iter()
                    .find(|c| c.key.name.starts_with(prefix))
                    .map(|c| c.span)
            };
            let focus = within(|i| matches!(i, ast::Item::Data(_)))
                .then(|| pick("data."))
                .flatten()
                .or_else(|| {
                    within(|i| matches!(i, ast::Item::Model(_)))
                        .then(|| pick("model"))
                        .flatten()
                })
                .unwrap_or(config.focus);
            d.labels.insert(
                0,
                crate::diag::Label {
                    file,
                    span: focus,
                    message: "in the trial with this value".to_string(),
                    primary: true,
                },
            );
        }
    }
    d.note(format!("in trial `{}`", config.display_name()))
}

#[cfg(test)]
mod tests;
