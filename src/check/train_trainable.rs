//! Whether a model can be trained as written: the forms the trainer has no gradient or no kernel
//! for, found from the spec so that `check` reports them (E0507) rather than `train` (E0809).
//!
//! Input: the checked model of a train block. Output: one error per layer the trainer would
//! refuse, at that layer. The trainer (`runtime::train::setup`, `runtime::train::context`) keeps
//! its own refusals as a defence for plans that did not come from a checked spec: the two lists
//! must agree, which `tests/check_vs_train.rs` checks on every ui case.

use super::types::CheckedModel;
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::ops::layer::LayerOp;
use crate::ops::types::Padding;

/// Reports each layer of `model` that training cannot run; `header` is the train block's.
pub fn check_trainable(
    file: FileId,
    model: &CheckedModel,
    header: Span,
    diags: &mut Vec<Diagnostic>,
) {
    for layer in &model.layers {
        let (what, help) = if layer.output.dtype.is_integer() {
            (
                format!(
                    "`{}` computes integer values ({}), which have no gradient",
                    layer.name, layer.output
                ),
                "keep integer values to the model's inputs and the `embedding` that reads them; cast to `f32` before any layer that computes",
            )
        } else if matches!(
            layer.op,
            LayerOp::Pool2d {
                padding: Padding::Explicit(_),
                ..
            }
        ) {
            (
                format!(
                    "`{}` pads explicitly, which the trainer's pooling has no kernel for",
                    layer.name
                ),
                "use `padding: valid` or `padding: same` on a pooling layer in a trained model",
            )
        } else {
            continue;
        };
        diags.push(
            Diagnostic::error(
                codes::CHECK_NOT_TRAINABLE,
                format!("model `{}` cannot be trained: {what}", model.name),
            )
            .primary(file, layer.span, "training cannot run this layer")
            .secondary(file, header, "trained here")
            .help(help),
        );
    }
}
