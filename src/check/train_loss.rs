//! The loss against the model's output: whether it can be computed on it (E0502), and whether
//! the output's last activation is what the loss expects (E0506, a warning: `from_logits: true`
//! after a softmax, or a probability loss on a linear output).
//!
//! Input: the resolved loss, where it was written, and the checked model. Output: diagnostics
//! pointing at the loss and at the layer that computes the output.

use super::train_fit::{classes, output_span};
use super::train_types::{Loss, LossKind};
use super::types::CheckedModel;
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::ops::layer::LayerOp;
use crate::ops::types::Activation;

/// Checks that `loss` can be computed on the model's output.
pub fn check_loss_output(
    file: FileId,
    loss: &Loss,
    loss_span: Span,
    model: &CheckedModel,
    diags: &mut Vec<Diagnostic>,
) {
    let out = &model.output_fact;
    let base = |msg: String, label: String| {
        Diagnostic::error(codes::CHECK_LOSS_OUTPUT, msg)
            .primary(file, loss_span, label)
            .secondary(
                file,
                output_span(model),
                format!("the model's output {out} is computed here"),
            )
    };
    if out.dtype.is_integer() {
        diags.push(base(
            format!(
                "`{}` needs a float output, the model outputs {}",
                loss.kind.name(),
                out.dtype
            ),
            "needs a float output".into(),
        ));
        return;
    }
    let c = classes(model);
    match loss.kind {
        LossKind::SparseCategoricalCrossentropy | LossKind::CategoricalCrossentropy => {
            if out.rank() < 2 || c.is_some_and(|c| c < 2) {
                let units = c.map_or_else(
                    || "no class axis".to_string(),
                    |c| format!("{c} unit{}", if c == 1 { "" } else { "s" }),
                );
                diags.push(
                    base(format!("`{}` needs an output with a class axis of at least 2, the model outputs {units}", loss.kind.name()), format!("needs at least 2 classes, found {units}"))
                        .note(format!("expected an output [N, classes] with classes >= 2, found {}", out.shape_string()))
                        .help("for a single sigmoid unit use `binary_crossentropy`; otherwise end the model with `dense(classes, activation: softmax)`"),
                );
            }
        }
        LossKind::BinaryCrossentropy => {
            if c != Some(1) {
                diags.push(
                    base("`binary_crossentropy` needs an output of 1 unit".into(), format!("needs 1 unit, found {}", out.shape_string()))
                        .note(format!("expected [N, 1], found {}", out.shape_string()))
                        .help("end the model with `dense(1, activation: sigmoid)`, or use `sparse_categorical_crossentropy` for several classes"),
                );
            }
        }
        LossKind::Mse | LossKind::Mae | LossKind::Huber | LossKind::LogCosh => {}
    }
}

/// Warns when the output's last activation and the loss disagree about what the output holds.
pub fn check_loss_activation(
    file: FileId,
    loss: &Loss,
    loss_span: Span,
    model: &CheckedModel,
    diags: &mut Vec<Diagnostic>,
) {
    if !loss.kind.is_crossentropy() {
        return;
    }
    let Some(activation) = output_activation(model) else {
        return;
    };
    let squashes = matches!(activation, Activation::Softmax { .. } | Activation::Sigmoid);
    let name = loss.kind.name();
    let warning = if loss.from_logits && squashes {
        Diagnostic::warning(
            codes::CHECK_LOSS_ACTIVATION,
            format!(
                "`{name}` with `from_logits: true` after a {}: the loss applies it again",
                activation_name(activation)
            ),
        )
        .primary(file, loss_span, "`from_logits: true` expects raw scores")
        .secondary(
            file,
            output_span(model),
            format!("the output is already a {}", activation_name(activation)),
        )
        .help("drop `from_logits: true`, or end the model with a linear layer")
    } else if !loss.from_logits && activation == Activation::Linear {
        Diagnostic::warning(
            codes::CHECK_LOSS_ACTIVATION,
            format!("`{name}` expects probabilities, and the model's output is linear"),
        )
        .primary(file, loss_span, "reads the output as probabilities")
        .secondary(file, output_span(model), "raw scores, not probabilities")
        .help(if loss.kind == LossKind::BinaryCrossentropy {
            "add `activation: sigmoid` to the last layer, or write `from_logits: true`"
        } else {
            "add `activation: softmax` to the last layer, or write `from_logits: true`"
        })
    } else {
        return;
    };
    diags.push(warning);
}

/// The activation the model's output ends with, when the last layer is one that has one.
fn output_activation(model: &CheckedModel) -> Option<Activation> {
    let i = model.output.0.checked_sub(model.inputs.len())?;
    match &model.layers.get(i)?.op {
        LayerOp::Dense { activation, .. }
        | LayerOp::Conv2d { activation, .. }
        | LayerOp::Activation(activation) => Some(*activation),
        _ => None,
    }
}

fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Sigmoid => "sigmoid",
        _ => "softmax",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_file;
    use crate::syntax::{parse, Limits};

    fn model(text: &str) -> CheckedModel {
        let f = FileId::from_index(0);
        let parsed = parse(f, text, &Limits::default());
        check_file(f, &parsed.file).models.remove(0)
    }

    #[test]
    fn loss_must_fit_the_output() {
        let mut d = Vec::new();
        let one = model("model R(x: f32[N, 3]) -> f32[N, 1] {\n dense(1)\n}");
        let f = FileId::from_index(0);
        let loss = Loss::plain;
        check_loss_output(
            f,
            &loss(LossKind::SparseCategoricalCrossentropy),
            Span::new(0, 1),
            &one,
            &mut d,
        );
        check_loss_output(
            f,
            &loss(LossKind::BinaryCrossentropy),
            Span::new(0, 1),
            &one,
            &mut d,
        );
        check_loss_output(f, &loss(LossKind::Mse), Span::new(0, 1), &one, &mut d);
        assert_eq!(
            d.iter().map(|x| x.code.as_str()).collect::<Vec<_>>(),
            ["E0502"]
        );
    }

    #[test]
    fn the_last_activation_must_be_what_the_loss_reads() {
        let f = FileId::from_index(0);
        let soft = model("model S(x: f32[N, 3]) -> f32[N, 4] {\n dense(4, activation: softmax)\n}");
        let raw = model("model R(x: f32[N, 3]) -> f32[N, 4] {\n dense(4)\n}");
        let sig = model("model B(x: f32[N, 3]) -> f32[N, 1] {\n dense(1)\n sigmoid()\n}");
        let codes = |loss: Loss, m: &CheckedModel| {
            let mut d = Vec::new();
            check_loss_activation(f, &loss, Span::new(0, 1), m, &mut d);
            d.iter()
                .map(|x| (x.code.as_str(), x.is_error()))
                .collect::<Vec<_>>()
        };
        let sparse = |from_logits| Loss {
            from_logits,
            ..Loss::plain(LossKind::SparseCategoricalCrossentropy)
        };
        assert_eq!(codes(sparse(true), &soft), [("E0506", false)]);
        assert_eq!(codes(sparse(false), &raw), [("E0506", false)]);
        assert!(codes(sparse(false), &soft).is_empty());
        assert!(codes(sparse(true), &raw).is_empty());
        let binary = |from_logits| Loss {
            from_logits,
            ..Loss::plain(LossKind::BinaryCrossentropy)
        };
        assert_eq!(codes(binary(true), &sig), [("E0506", false)]);
        assert!(codes(binary(false), &sig).is_empty());
        let mse = Loss::plain(LossKind::Mse);
        assert!(codes(mse, &raw).is_empty());
    }
}
