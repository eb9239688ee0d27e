//! A multi-input pipeline against its model: each input group (`inputs image: 64, meta: 3`)
//! feeds the model input of its name.
//!
//! Input: the pipeline's [`InputFacts`] (from `crate::data::typing::group_types`) and the
//! checked model. Output: E0524 for a group named after no model input, a model input no group
//! feeds, or groups listed in another order than the model's inputs (batches hand the trainer
//! the groups in the `inputs` line's order); then E0504 for each group whose element type does
//! not fit its input, at the group's step that fixed it.

use super::train_fit::{check_input, DataFacts};
use super::types::{CheckedModel, DType};
use crate::diag::suggest::help_for;
use crate::diag::{codes, Diagnostic, FileId, Span};

/// What one input group of a pipeline yields per sample.
#[derive(Clone, Debug, PartialEq)]
pub struct InputFacts {
    /// The model input it feeds.
    pub name: String,
    /// `name: columns` on the `inputs` line.
    pub span: Span,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// The group's step that fixed its shape (its `inputs` entry when no step did).
    pub feature_span: Span,
}

/// The facts of every input group of `spec` (none without an `inputs` line); `None` when a
/// group's type is not known (reported by the data checker).
pub fn input_facts(spec: &crate::data::PipelineSpec) -> Option<Vec<InputFacts>> {
    use crate::data::typing::{self, group_types};
    let groups = group_types(spec).ok()?;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let last = g.trace.last()?;
        let mut feature_span = g.span;
        for pair in g.trace.windows(2) {
            if pair[0].shape != pair[1].shape || pair[0].dtype != pair[1].dtype {
                feature_span = pair[1].span;
            }
        }
        out.push(InputFacts {
            name: g.name,
            span: g.span,
            dtype: match last.dtype {
                typing::DType::F32 => DType::F32,
                typing::DType::I64 => DType::I64,
            },
            shape: last.shape.clone()?,
            feature_span,
        });
    }
    Some(out)
}

/// E0524 and E0504 for a pipeline with input groups against `model`.
pub(super) fn check_groups(
    file: FileId,
    data: &DataFacts,
    model: &CheckedModel,
    diags: &mut Vec<Diagnostic>,
) {
    let found = diags.len();
    let names = || model.inputs.iter().map(|i| i.name.as_str());
    for g in &data.inputs {
        if model.inputs.iter().any(|i| i.name == g.name) {
            continue;
        }
        let list = names()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = help_for(&g.name, names(), "model input").unwrap_or_else(|| {
            format!(
                "name each group after an input of model `{}`: {list}",
                model.name
            )
        });
        diags.push(
            Diagnostic::error(
                codes::CHECK_INPUT_GROUP_NAME,
                format!(
                    "input group `{}` feeds no input of model `{}`",
                    g.name, model.name
                ),
            )
            .primary(file, g.span, "no model input of this name")
            .secondary(
                file,
                model.span,
                format!("model `{}` takes {list}", model.name),
            )
            .help(help),
        );
    }
    let line = data.inputs.first().map_or(data.source_span, |g| g.span);
    for input in &model.inputs {
        if data.inputs.iter().any(|g| g.name == input.name) {
            continue;
        }
        diags.push(
            Diagnostic::error(
                codes::CHECK_INPUT_GROUP_NAME,
                format!(
                    "input `{}` of model `{}` gets no data from `{}`",
                    input.name, model.name, data.name
                ),
            )
            .primary(file, input.span, "no input group feeds this input")
            .secondary(file, line, "the pipeline's input groups")
            .help(format!(
                "add a group `{}: ...` (a count of columns, or their names) to the `inputs` line",
                input.name
            )),
        );
    }
    if diags.len() != found {
        return;
    }
    let order: Vec<&str> = names().collect();
    let listed: Vec<&str> = data.inputs.iter().map(|g| g.name.as_str()).collect();
    if order != listed {
        let first = data
            .inputs
            .iter()
            .zip(&order)
            .find(|(g, n)| g.name != **n)
            .map_or(line, |(g, _)| g.span);
        diags.push(
            Diagnostic::error(
                codes::CHECK_INPUT_GROUP_NAME,
                format!(
                    "the input groups are listed in another order than model `{}`'s inputs",
                    model.name
                ),
            )
            .primary(file, first, "out of the model's order")
            .secondary(file, model.span, "the model's inputs are declared here")
            .note(format!(
                "expected {}, found {}",
                order.join(", "),
                listed.join(", ")
            ))
            .help("list the groups on the `inputs` line in the order of the model's inputs"),
        );
        return;
    }
    for (g, input) in data.inputs.iter().zip(&model.inputs) {
        let found = (g.dtype, &g.shape[..], g.feature_span);
        check_input(file, model, input, found, Some(&g.name), diags);
    }
}
