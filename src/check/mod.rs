//! The checker: names, arguments, dtypes and shapes across model, data and train blocks.
//!
//! Input: a parsed file (`ast::File`). Output: [`Checked`]: every problem found (sorted by the
//! caller) and the typed program later phases build on: one [`CheckedModel`] per model without
//! errors and one [`CheckedTrain`] per train block without errors. Invariants: never panics on
//! any AST; all size arithmetic is checked; a problem is reported once (later rules see an
//! "unknown" value instead of cascading).
//!
//! Files: `signature` (binding arguments to the signatures each op family declares in `ops`),
//! `inputs` (signature types), `model` + `model_diag` (model bodies: they apply each layer's
//! shape rule from `ops` and explain its errors with spans), `train` + `train_types` + `train_schedule` (schedule chains) +
//! `train_fit` (train blocks and cross-block checks), `experiment` (experiment blocks: every
//! trial checked as a train block), `limits` (model size limits, and
//! `check_with_limits`: a file checked within them), `summary`.

pub mod experiment;
pub mod inputs;
pub mod limits;
pub mod model;
mod model_diag;
pub mod signature;
pub mod summary;
pub mod train;
pub mod train_fit;
pub mod train_inputs;
pub mod train_loss;
pub mod train_metrics;
pub mod train_monitor;
pub mod train_optimizer;
pub mod train_outputs;
pub mod train_schedule;
pub mod train_target;
pub mod train_trainable;
pub mod train_types;
pub mod types;

#[cfg(test)]
mod tests;

pub use train_fit::{DataFacts, LabelFacts};
pub use train_types::*;
pub use types::*;

use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::syntax::ast;
use serde::Serialize;
use std::collections::HashMap;

/// What checking a file found.
#[derive(Debug, Default, Serialize)]
pub struct Checked {
    #[serde(skip)]
    pub diagnostics: Vec<Diagnostic>,
    /// Models without errors, in source order.
    pub models: Vec<CheckedModel>,
    /// Train blocks without errors, in source order.
    pub trains: Vec<CheckedTrain>,
    /// Data pipelines without errors, in source order, typed but not yet loaded.
    #[serde(skip)]
    pub pipelines: Vec<crate::data::PipelineSpec>,
    /// Experiments without errors, in source order, every trial checked.
    #[serde(skip)]
    pub experiments: Vec<experiment::CheckedExperiment>,
}

impl Checked {
    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks a parsed file.
pub fn check_file(file: FileId, ast: &ast::File) -> Checked {
    let mut diags = Vec::new();
    duplicate_blocks(file, ast, &mut diags);
    let mut models: HashMap<String, Option<CheckedModel>> = HashMap::new();
    let mut order = Vec::new();
    let mut data: HashMap<String, &ast::DataDef> = HashMap::new();
    let mut facts = HashMap::new();
    let mut pipelines = Vec::new();
    for item in &ast.items {
        match item {
            ast::Item::Model(m) => {
                let checked = model::check_model(file, m, &mut diags);
                if !models.contains_key(&m.name.name) {
                    order.push(m.name.name.clone());
                    models.insert(m.name.name.clone(), checked);
                }
            }
            ast::Item::Data(d) => {
                let (spec, problems) = crate::data::lower_data_def(file, d);
                diags.extend(problems);
                if let Some(spec) = spec {
                    if let Err(errors) = crate::data::element_type(&spec) {
                        diags.extend(errors.iter().map(|e| e.to_diagnostic(file)));
                    } else if !data.contains_key(&d.name.name) {
                        if let Some(f) = train::data_facts(&spec) {
                            facts.insert(d.name.name.clone(), f);
                        }
                        pipelines.push(spec);
                    }
                }
                data.entry(d.name.name.clone()).or_insert(d);
            }
            ast::Item::Train(_) | ast::Item::Experiment(_) => {}
        }
    }
    let mut trains = Vec::new();
    {
        let cx = train::Context {
            models: &models,
            model_names: order.iter().map(String::as_str).collect(),
            data: &data,
            facts: &facts,
        };
        for item in &ast.items {
            if let ast::Item::Train(t) = item {
                if let Some(ct) = train::check_train(file, t, &cx, &mut diags) {
                    trains.push(ct);
                }
            }
        }
    }
    let models = order
        .iter()
        .filter_map(|n| models.remove(n).flatten())
        .collect();
    let mut found = Vec::new();
    let experiments = experiment::check_experiments(file, ast, &diags, &mut found);
    diags.append(&mut found);
    Checked {
        diagnostics: diags,
        models,
        trains,
        pipelines,
        experiments,
    }
}

/// Two blocks of the same kind with the same name.
fn duplicate_blocks(file: FileId, ast: &ast::File, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<(&str, &str), Span> = HashMap::new();
    for item in &ast.items {
        let kind = match item {
            ast::Item::Model(_) => "model",
            ast::Item::Data(_) => "data",
            ast::Item::Train(_) => "train",
            ast::Item::Experiment(_) => "experiment",
        };
        let name = item.name();
        if let Some(first) = seen.get(&(kind, name.name.as_str())) {
            let mut d = Diagnostic::error(
                codes::CHECK_DUPLICATE_BLOCK,
                format!("{kind} `{}` is defined twice", name.name),
            )
            .primary(file, name.span, "defined again here")
            .secondary(file, *first, "first defined here");
            d = if kind == "train" {
                d.help("name each train block with `as`: `train M on D as Name { ... }`")
            } else {
                d.help("rename one of them")
            };
            diags.push(d);
        } else {
            seen.insert((kind, name.name.as_str()), name.span);
        }
    }
}
