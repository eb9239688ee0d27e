//! One configuration of an experiment as a file of its own: the base train block with the
//! configuration's train settings and model, its data block with the data settings, and the
//! model it trains; checked by the same checker as any file, so every rule applies to every
//! trial. Changed values keep their spans in the experiment, so problems point there.

use super::lines::Change;
use crate::check::train_types::CheckedTrain;
use crate::check::types::CheckedModel;
use crate::data::PipelineSpec;
use crate::diag::{codes, Diagnostic, FileId};
use crate::syntax::ast::{self, Arg, ExprKind, Ident, Setting};

/// What a trial trains, checked.
pub type CheckedTrial = (CheckedTrain, CheckedModel, PipelineSpec);

/// Checks the base with `changes` applied; `Err` holds every diagnostic of the trial's file.
pub fn check(
    file: FileId,
    ast: &ast::File,
    base: &ast::TrainDef,
    changes: &[Change],
) -> Result<CheckedTrial, Vec<Diagnostic>> {
    let trial = trial_file(file, ast, base, changes)?;
    let checked = crate::check::check_file(file, &trial);
    if checked.has_errors() {
        return Err(checked.diagnostics);
    }
    let Some(train) = checked.trains.first() else {
        return Err(checked.diagnostics);
    };
    let model = checked.models.iter().find(|m| m.name == train.model);
    let pipeline = checked.pipelines.iter().find(|p| p.name == train.data);
    match (model, pipeline) {
        (Some(m), Some(p)) => Ok((train.clone(), m.clone(), p.clone())),
        _ => Err(checked.diagnostics),
    }
}

/// The file a trial is: its model (every model when the name is unknown, so the checker can
/// suggest one), its data block with the data changes, and the base with the train changes.
pub fn trial_file(
    file: FileId,
    ast: &ast::File,
    base: &ast::TrainDef,
    changes: &[Change],
) -> Result<ast::File, Vec<Diagnostic>> {
    let (data, train) = changed_blocks(file, ast, base, changes)?;
    let mut items = Vec::new();
    let models: Vec<&ast::ModelDef> = ast
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Model(m) => Some(m),
            _ => None,
        })
        .collect();
    match models.iter().find(|m| m.name.name == train.model.name) {
        Some(m) => items.push(ast::Item::Model((*m).clone())),
        None => items.extend(models.iter().map(|m| ast::Item::Model((*m).clone()))),
    }
    match data {
        Some(d) => items.push(ast::Item::Data(d)),
        None => items.extend(
            ast.items
                .iter()
                .filter(|i| matches!(i, ast::Item::Data(_)))
                .cloned(),
        ),
    }
    items.push(ast::Item::Train(train));
    Ok(ast::File { items })
}

/// The base's data block (when the file has it) and the base, with `changes` applied.
pub fn changed_blocks(
    file: FileId,
    ast: &ast::File,
    base: &ast::TrainDef,
    changes: &[Change],
) -> Result<(Option<ast::DataDef>, ast::TrainDef), Vec<Diagnostic>> {
    let mut train = base.clone();
    let mut data_changes = Vec::new();
    for c in changes {
        if c.key.name == "model" {
            train.model = model_name(file, c)?;
        } else if let Some(key) = c.key.name.strip_prefix("data.") {
            data_changes.push((key, c));
        } else {
            apply(&mut train.settings, &c.key.name, c);
        }
    }
    let data = ast.items.iter().find_map(|i| match i {
        ast::Item::Data(d) if d.name.name == train.data.name => Some(d),
        _ => None,
    });
    let data = data.map(|d| {
        let mut d = d.clone();
        for (key, c) in data_changes {
            apply(&mut d.settings, key, c);
        }
        d
    });
    Ok((data, train))
}

/// `model: [A, B]` values are model names.
fn model_name(file: FileId, c: &Change) -> Result<Ident, Vec<Diagnostic>> {
    if let Some(
        [Arg {
            name: None,
            value:
                ast::Expr {
                    kind: ExprKind::Name(n),
                    ..
                },
            ..
        }],
    ) = c.args.as_deref()
    {
        return Ok(n.clone());
    }
    Err(vec![Diagnostic::error(
        codes::CHECK_ARGUMENT_TYPE,
        "`model` takes the name of a model block",
    )
    .primary(file, c.span, "not a model's name")
    .help(
        "write the names of the models to try: `vary model: [Small, Large]`",
    )])
}

/// Replaces (or adds, or with `none` removes) the setting `key` of a block.
fn apply(settings: &mut Vec<Setting>, key: &str, c: &Change) {
    let Some(args) = &c.args else {
        settings.retain(|s| s.key.name != key);
        return;
    };
    // The key, too, is placed at the value: a label on the setting then shows this trial's
    // value, not the whole `vary` line.
    let new = Setting {
        key: Ident {
            name: key.to_string(),
            span: c.span,
        },
        args: args.clone(),
        span: c.span,
    };
    let mut placed = false;
    settings.retain_mut(|s| {
        if s.key.name != key {
            return true;
        }
        if placed {
            return false;
        }
        *s = new.clone();
        placed = true;
        true
    });
    if !placed {
        settings.push(new);
    }
}
