//! `target inputs`: the loss compares the model's output with the model's own input (Keras's
//! `fit(x, x)`, for autoencoders) instead of the pipeline's labels.
//!
//! Input: the `target` setting, the checked model, the pipeline's [`DataFacts`], the resolved
//! loss and the other settings. Output: the [`Target`], or diagnostics: an output whose per-sample
//! shape or dtype is not the input's (E0522, at the setting, with the output layer and the
//! pipeline step that fixed the features as the reasons), and a setting that needs class
//! labels beside it (E0523: a class-id loss, `class_weight`).

use super::signature::{self as sig, pos, Default, Kind, Param, Signature};
use super::train_fit::{output_span, DataFacts};
use super::train_metrics::setting_span;
use super::train_types::{Loss, LossKind, Target};
use super::types::{CheckedModel, DType, Dim};
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::ops::symbols::Symbols;
use crate::syntax::ast::Setting;

/// `target labels | inputs`.
pub const TARGET: &[Param] = &[pos(
    "target",
    Kind::Choice(&["labels", "inputs"]),
    Default::Required,
)];

/// Reads `target inputs` (or `target labels`, the default written out).
pub fn target(file: FileId, s: &Setting, diags: &mut Vec<Diagnostic>) -> Option<Target> {
    let b = sig::bind(
        file,
        &Signature { params: TARGET },
        "`target`",
        &s.args,
        s.span,
        diags,
    )?;
    Some(match b.name("target") {
        "inputs" => Target::Inputs,
        _ => Target::Labels,
    })
}

fn dims_text(dims: &[String]) -> String {
    format!("[{}]", dims.join(", "))
}

/// The model's output against the features it reads (E0522): with `target inputs` they are
/// the loss's two sides, so each sample's output must have the features' dtype and shape.
pub fn check_output_is_input(
    file: FileId,
    setting: &Setting,
    data: &DataFacts,
    model: &CheckedModel,
    diags: &mut Vec<Diagnostic>,
) {
    let out = &model.output_fact;
    let per_sample = out.dims.get(1..).unwrap_or(&[]);
    let found: Vec<String> = per_sample.iter().map(ToString::to_string).collect();
    let want: Vec<String> = data
        .features_shape
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut symbols = Symbols::default();
    let shape_fits = per_sample.len() == data.features_shape.len()
        && per_sample
            .iter()
            .zip(&data.features_shape)
            .all(|(d, &n)| symbols.unify(d, &Dim::Known(n), data.feature_span) == Ok(true));
    let dtype_fits = data.features_dtype == DType::F32 && out.dtype == DType::F32;
    if shape_fits && dtype_fits {
        return;
    }
    let (message, note) = if dtype_fits {
        (
            format!(
                "`target inputs` compares the output {} with the input {}, and their shapes differ",
                dims_text(&found),
                dims_text(&want)
            ),
            format!(
                "expected an output of {}[N, {}], found {out}",
                data.features_dtype,
                want.join(", "),
            ),
        )
    } else {
        (
            format!(
                "`target inputs` needs float inputs and outputs, and the pipeline yields {} features",
                data.features_dtype
            ),
            format!(
                "the output is {}, the features {}{}",
                out,
                data.features_dtype,
                dims_text(&want)
            ),
        )
    };
    diags.push(
        Diagnostic::error(codes::CHECK_TARGET_INPUTS_SHAPE, message)
            .primary(
                file,
                setting_span(setting),
                "the loss compares the output with the input",
            )
            .secondary(
                file,
                output_span(model),
                format!("the model's output {out} is computed here"),
            )
            .secondary(
                file,
                data.feature_span,
                format!(
                    "the pipeline yields {}{} per sample",
                    data.features_dtype,
                    dims_text(&want)
                ),
            )
            .note(note)
            .help(if dtype_fits {
                "end the model with a layer that rebuilds the input's shape (e.g. `dense(units)` then `reshape(...)`)"
            } else {
                "an autoencoder of token ids needs labels: train it on the ids with `sparse_categorical_crossentropy` and a label per position"
            }),
    );
}

/// Settings that need class labels, beside `target inputs` (E0523).
pub fn check_settings(
    file: FileId,
    setting: &Setting,
    (loss, loss_span): (&Loss, Span),
    class_weight: Option<&Setting>,
    diags: &mut Vec<Diagnostic>,
) {
    let at = setting_span(setting);
    if matches!(
        loss.kind,
        LossKind::SparseCategoricalCrossentropy | LossKind::CategoricalCrossentropy
    ) {
        diags.push(
            Diagnostic::error(
                codes::CHECK_TARGET_INPUTS_SETTING,
                format!(
                    "`{}` compares scores with classes, and `target inputs` has none",
                    loss.kind.name()
                ),
            )
            .primary(file, loss_span, "needs class labels")
            .secondary(file, at, "the target is the model's input")
            .help("reconstruct the input with `mse`, `mae`, `huber` or `log_cosh`"),
        );
    }
    if let Some(w) = class_weight {
        diags.push(
            Diagnostic::error(
                codes::CHECK_TARGET_INPUTS_SETTING,
                "`class_weight` weighs samples by class, and `target inputs` has no classes",
            )
            .primary(file, setting_span(w), "needs class labels")
            .secondary(file, at, "the target is the model's input")
            .help("remove `class_weight`"),
        );
    }
}
