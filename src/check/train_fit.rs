//! Whether a train block's parts fit together: the data pipeline's element type against the
//! model's input and the loss (the loss against the output is `train_loss`).
//!
//! Input: a checked model, the resolved loss, and [`DataFacts`] (a plain description of what a
//! pipeline yields, filled from `crate::data` at the integration point in `train.rs`). Output:
//! diagnostics that point at both sides (pipeline step and model input, loss and output layer).

use super::train_types::{Loss, LossKind};
use super::types::{CheckedInput, CheckedModel, DType, Dim};
use crate::diag::{codes, Diagnostic, FileId, Span};
use crate::ops::symbols::Symbols;
use crate::syntax::ast;

/// What a data pipeline yields per sample, and where each part was fixed.
#[derive(Clone, Debug, PartialEq)]
pub struct DataFacts {
    /// The data block's name.
    pub name: String,
    pub features_dtype: DType,
    /// Per-sample feature shape (no batch axis).
    pub features_shape: Vec<usize>,
    /// The pipeline step that fixed the feature shape (e.g. `resize(28, 28)`).
    pub feature_span: Span,
    /// `None`: the pipeline yields features only.
    pub labels: Option<LabelFacts>,
    /// With a label set per model output (`label: ["digit", "parity"]`), the sets after the
    /// first (which is `labels`), in order; empty for one label set.
    pub more_labels: Vec<LabelFacts>,
    /// The source step (where labels come from, or would).
    pub source_span: Span,
    /// The `split` step, when the pipeline holds out validation data.
    pub validation: Option<Span>,
    /// A multi-input pipeline's groups, in the `inputs` line's order (empty: one input, the
    /// features above).
    pub inputs: Vec<super::train_inputs::InputFacts>,
}

/// What a pipeline's labels are.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelFacts {
    pub dtype: DType,
    /// Per-sample label shape: `[]` for a class id or a scalar target, `[k]` for one-hot.
    pub shape: Vec<usize>,
    /// The number of classes, when the labels are class ids.
    pub num_classes: Option<usize>,
    /// The pipeline step that fixed the labels (e.g. `source csv(.., label: "target")`).
    pub span: Span,
}

/// The span of the layer (or input) that computes the model's output.
pub(super) fn output_span(model: &CheckedModel) -> Span {
    let i = model.output.0;
    if i < model.inputs.len() {
        model.inputs.get(i).map_or(model.span, |x| x.span)
    } else {
        model
            .layers
            .get(i - model.inputs.len())
            .map_or(model.span, |l| l.span)
    }
}

/// The size of the output's class axis (the last), if known.
pub(super) fn classes(model: &CheckedModel) -> Option<usize> {
    model.output_fact.dims.last().and_then(Dim::known)
}

/// Checks a pipeline's element type against the model's input and the loss.
pub fn check_data(
    file: FileId,
    data: &DataFacts,
    model: &CheckedModel,
    (loss, loss_span): (&Loss, Span),
    target_inputs: Option<&ast::Setting>,
    diags: &mut Vec<Diagnostic>,
) {
    let found = diags.len();
    check_features(file, data, model, diags);
    if let Some(setting) = target_inputs {
        if diags.len() == found {
            super::train_target::check_output_is_input(file, setting, data, model, diags);
        }
        return;
    }
    match &data.labels {
        Some(labels) => check_labels(file, labels, model, *loss, loss_span, diags),
        None => diags.push(
            Diagnostic::error(
                codes::CHECK_LABELS_LOSS,
                format!(
                    "`{}` needs labels, and the data `{}` has none",
                    loss.kind.name(),
                    data.name
                ),
            )
            .primary(file, data.source_span, "this source yields features only")
            .secondary(
                file,
                loss_span,
                format!("`{}` compares the output with labels", loss.kind.name()),
            )
            .help("name the label column (`csv(..., label: \"target\")`) or the labels file (`npy(x, labels: y)`); an autoencoder writes `target inputs`"),
        ),
    }
}

fn shape_text(dims: &[usize]) -> String {
    let v: Vec<String> = dims.iter().map(ToString::to_string).collect();
    format!("[{}]", v.join(", "))
}

pub(super) fn check_features(
    file: FileId,
    data: &DataFacts,
    model: &CheckedModel,
    diags: &mut Vec<Diagnostic>,
) {
    if !data.inputs.is_empty() {
        super::train_inputs::check_groups(file, data, model, diags);
        return;
    }
    let [input] = model.inputs.as_slice() else {
        diags.push(
            Diagnostic::error(
                codes::CHECK_DATA_INPUT,
                format!(
                    "model `{}` has {} inputs; a data pipeline feeds one",
                    model.name,
                    model.inputs.len()
                ),
            )
            .primary(
                file,
                data.feature_span,
                "the pipeline yields one feature tensor",
            )
            .secondary(file, model.span, "the model is declared here"),
        );
        return;
    };
    let found = (
        data.features_dtype,
        &data.features_shape[..],
        data.feature_span,
    );
    check_input(file, model, input, found, None, diags);
}

/// E0504 unless features of `dtype[shape]` (fixed at `span`) fit `input`; `group` names the
/// input group that yields them, in a multi-input pipeline.
pub(super) fn check_input(
    file: FileId,
    model: &CheckedModel,
    input: &CheckedInput,
    (dtype, shape, span): (DType, &[usize], Span),
    group: Option<&str>,
    diags: &mut Vec<Diagnostic>,
) {
    let per_sample: Vec<Dim> = input.fact.dims.iter().skip(1).cloned().collect();
    let declared = format!(
        "{}[{}]",
        input.fact.dtype,
        per_sample
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let found = format!("{dtype}{}", shape_text(shape));
    // Integer ids fit any integer input: the runtime converts i64 ids to i32 with a range check.
    let dtype_fits =
        input.fact.dtype == dtype || (input.fact.dtype.is_integer() && dtype.is_integer());
    let mut fits = dtype_fits && per_sample.len() == shape.len();
    let mut symbols = Symbols::default();
    if fits {
        for (d, &n) in per_sample.iter().zip(shape) {
            if symbols.unify(d, &Dim::Known(n), span) != Ok(true) {
                fits = false;
            }
        }
    }
    if !fits {
        let message = match group {
            Some(g) => format!(
                "input group `{g}` does not fit input `{}` of model `{}`",
                input.name, model.name
            ),
            None => format!("the data does not fit the input of model `{}`", model.name),
        };
        diags.push(
            Diagnostic::error(codes::CHECK_DATA_INPUT, message)
                .primary(file, span, format!("the pipeline yields {found} per sample"))
                .secondary(file, input.span, format!("the model expects {declared} per sample"))
                .note(format!("expected {declared}, found {found}"))
                .help("change the pipeline's `map` steps (e.g. `reshape`, `resize`) or the model's input type"),
        );
    }
}

pub(super) fn check_labels(
    file: FileId,
    labels: &LabelFacts,
    model: &CheckedModel,
    loss: Loss,
    loss_span: Span,
    diags: &mut Vec<Diagnostic>,
) {
    let scalar = labels.shape.is_empty() || labels.shape == [1];
    let classes = classes(model);
    let found = format!("{}{}", labels.dtype, shape_text(&labels.shape));
    let err = |msg: String, label: String, help: &str| {
        Diagnostic::error(codes::CHECK_LABELS_LOSS, msg)
            .primary(file, labels.span, label)
            .secondary(
                file,
                loss_span,
                format!("`{}` is chosen here", loss.kind.name()),
            )
            .help(help.to_string())
    };
    // The output per sample, and without its class axis: what class-id labels must match.
    let out: Vec<Option<usize>> = model
        .output_fact
        .dims
        .iter()
        .skip(1)
        .map(Dim::known)
        .collect();
    let positions = out.split_last().map_or(&[][..], |(_, rest)| rest);
    let label_dims: Vec<Option<usize>> = labels.shape.iter().map(|&n| Some(n)).collect();
    let fits_positions = |dims: &[Option<usize>]| {
        dims.len() == positions.len()
            && dims
                .iter()
                .zip(positions)
                .all(|(l, o)| o.is_none() || l == o)
    };
    match loss.kind {
        LossKind::SparseCategoricalCrossentropy => {
            let ids = if scalar { &[][..] } else { &label_dims[..] };
            if !labels.dtype.is_integer() || labels.num_classes.is_none() && !scalar {
                diags.push(err(
                    "`sparse_categorical_crossentropy` needs integer class labels".into(),
                    format!("the labels are {found}"),
                    "use `categorical_crossentropy` for one-hot labels",
                ));
            } else if !fits_positions(ids) {
                diags.push(positions_error(file, labels, model, loss_span, &found));
            } else if let (Some(k), Some(c)) = (labels.num_classes, classes) {
                if k > c {
                    diags.push(
                        err(
                            format!("the labels have {k} classes but the model outputs {c}"),
                            format!("{k} classes here"),
                            "make the last layer's units equal to the number of classes",
                        )
                        .secondary(
                            file,
                            output_span(model),
                            format!("{c} classes here"),
                        ),
                    );
                }
            }
        }
        LossKind::CategoricalCrossentropy => {
            let same = label_dims.len() == out.len()
                && label_dims
                    .iter()
                    .zip(&out)
                    .all(|(l, o)| o.is_none() || l == o);
            if labels.dtype.is_integer() || !same {
                diags.push(err(
                    "`categorical_crossentropy` needs one-hot labels of the output's size".into(),
                    format!("the labels are {found}"),
                    "use `sparse_categorical_crossentropy` for integer class ids, or `one_hot` them in the pipeline",
                ));
            }
        }
        LossKind::BinaryCrossentropy => {
            if !scalar || labels.num_classes.is_some_and(|k| k > 2) {
                diags.push(err(
                    "`binary_crossentropy` needs one 0/1 label per sample".into(),
                    format!("the labels are {found}"),
                    "use `sparse_categorical_crossentropy` for more than two classes",
                ));
            }
        }
        LossKind::Mse | LossKind::Mae | LossKind::Huber | LossKind::LogCosh => {
            let want: Vec<Option<usize>> = labels.shape.iter().map(|&n| Some(n)).collect();
            let same = out == want || (scalar && (out.is_empty() || out == [Some(1)]));
            if !same {
                diags.push(err(
                    format!("`{}` needs targets of the output's shape", loss.kind.name()),
                    format!("the labels are {found}"),
                    "make the model output one value per target",
                ));
            }
        }
    }
}

/// Class-id labels that do not match the output's positions (`[N, 8, 8, 10]` against one id
/// per sample): the loss compares each position's class scores with one id.
fn positions_error(
    file: FileId,
    labels: &LabelFacts,
    model: &CheckedModel,
    loss_span: Span,
    found: &str,
) -> Diagnostic {
    let out = &model.output_fact;
    let per_sample = out.dims.get(1..).unwrap_or(&[]);
    let ids = per_sample.split_last().map_or(&[][..], |(_, rest)| rest);
    let labels_are_scalar = labels.shape.is_empty() || labels.shape == [1];
    let want = if ids.is_empty() {
        "one class id per sample".to_string()
    } else {
        let dims: Vec<String> = ids.iter().map(ToString::to_string).collect();
        format!("class ids of shape [{}] per sample", dims.join(", "))
    };
    Diagnostic::error(
        codes::CHECK_LABELS_LOSS,
        format!("the labels do not fit the model's output {}", out.shape_string()),
    )
    .primary(
        file,
        labels.span,
        if labels_are_scalar {
            "the labels are one class id per sample".to_string()
        } else {
            format!("the labels are {found} per sample")
        },
    )
    .secondary(
        file,
        output_span(model),
        format!("the model's output {out} is computed here"),
    )
    .secondary(file, loss_span, "`sparse_categorical_crossentropy` is chosen here")
    .note(format!(
        "the loss compares the class scores on the output's last axis with {want}"
    ))
    .help(if labels_are_scalar {
        "end the model with one vector of class scores per sample, e.g. `global_avg_pool2d()` or `flatten()` before the last `dense`"
    } else {
        "give the pipeline labels of the output's shape without its last axis"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check_file, CheckedModel};
    use crate::syntax::{parse, Limits};

    fn model(text: &str) -> CheckedModel {
        let f = FileId::from_index(0);
        let parsed = parse(f, text, &Limits::default());
        check_file(f, &parsed.file).models.remove(0)
    }

    fn facts(dtype: DType, shape: &[usize], labels: LabelFacts) -> DataFacts {
        DataFacts {
            more_labels: Vec::new(),
            name: "D".into(),
            features_dtype: dtype,
            features_shape: shape.to_vec(),
            feature_span: Span::new(1, 2),
            labels: Some(labels),
            source_span: Span::new(7, 8),
            validation: None,
            inputs: Vec::new(),
        }
    }

    fn class_labels(k: usize) -> LabelFacts {
        LabelFacts {
            dtype: DType::I64,
            shape: vec![],
            num_classes: Some(k),
            span: Span::new(3, 4),
        }
    }

    fn run(data: &DataFacts, m: &CheckedModel, kind: LossKind) -> Vec<&'static str> {
        let mut d = Vec::new();
        check_data(
            FileId::from_index(0),
            data,
            m,
            (&Loss::plain(kind), Span::new(5, 6)),
            None,
            &mut d,
        );
        d.iter().map(|x| x.code.as_str()).collect()
    }

    const CNN: &str = "model M(image: f32[N, 28, 28, 1]) -> f32[N, 10] {\n flatten()\n dense(10, activation: softmax)\n}";

    #[test]
    fn fitting_data_passes() {
        let m = model(CNN);
        assert!(run(
            &facts(DType::F32, &[28, 28, 1], class_labels(10)),
            &m,
            LossKind::SparseCategoricalCrossentropy
        )
        .is_empty());
    }

    #[test]
    fn wrong_feature_shape_or_dtype_points_at_both_sides() {
        let m = model(CNN);
        let mut d = Vec::new();
        let data = facts(DType::F32, &[8, 8, 1], class_labels(10));
        check_data(
            FileId::from_index(0),
            &data,
            &m,
            (
                &Loss::plain(LossKind::SparseCategoricalCrossentropy),
                Span::new(5, 6),
            ),
            None,
            &mut d,
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code.as_str(), "E0504");
        assert_eq!(d[0].labels[0].span, Span::new(1, 2)); // the pipeline step
        assert_eq!(d[0].labels[1].span, m.inputs[0].span); // the model input
        assert_eq!(
            run(
                &facts(DType::I32, &[28, 28, 1], class_labels(10)),
                &m,
                LossKind::SparseCategoricalCrossentropy
            ),
            ["E0504"]
        );
    }

    #[test]
    fn symbols_in_the_input_unify_with_data_sizes() {
        let m = model("model M(x: f32[N, S, S, 2]) {\n global_avg_pool2d()\n}");
        let target = LabelFacts {
            dtype: DType::F32,
            shape: vec![2],
            num_classes: None,
            span: Span::new(3, 4),
        };
        assert!(run(
            &facts(DType::F32, &[28, 28, 2], target.clone()),
            &m,
            LossKind::Mse
        )
        .is_empty());
        // `S` cannot be 28 and 32.
        assert_eq!(
            run(&facts(DType::F32, &[28, 32, 2], target), &m, LossKind::Mse),
            ["E0504"]
        );
        let rnn = model("model M(x: i32[N, T]) {\n embedding(10, 4)\n lstm(3)\n dense(2, activation: softmax)\n}");
        assert!(run(
            &facts(DType::I32, &[7], class_labels(2)),
            &rnn,
            LossKind::SparseCategoricalCrossentropy
        )
        .is_empty());
    }

    #[test]
    fn labels_must_fit_the_loss() {
        let m = model(CNN);
        let f = |labels| facts(DType::F32, &[28, 28, 1], labels);
        let float_onehot = LabelFacts {
            dtype: DType::F32,
            shape: vec![10],
            num_classes: None,
            span: Span::new(3, 4),
        };
        assert_eq!(
            run(
                &f(float_onehot.clone()),
                &m,
                LossKind::SparseCategoricalCrossentropy
            ),
            ["E0503"]
        );
        assert!(run(&f(float_onehot), &m, LossKind::CategoricalCrossentropy).is_empty());
        assert_eq!(
            run(&f(class_labels(10)), &m, LossKind::CategoricalCrossentropy),
            ["E0503"]
        );
        assert_eq!(
            run(
                &f(class_labels(12)),
                &m,
                LossKind::SparseCategoricalCrossentropy
            ),
            ["E0503"]
        );
        assert_eq!(run(&f(class_labels(10)), &m, LossKind::Mse), ["E0503"]);
        let reg = model("model R(x: f32[N, 3]) -> f32[N, 1] {\n dense(1)\n}");
        let target = LabelFacts {
            dtype: DType::F32,
            shape: vec![],
            num_classes: None,
            span: Span::new(3, 4),
        };
        assert!(run(
            &facts(DType::F32, &[3], target.clone()),
            &reg,
            LossKind::Mse
        )
        .is_empty());
        assert!(run(
            &facts(DType::F32, &[3], class_labels(2)),
            &reg,
            LossKind::BinaryCrossentropy
        )
        .is_empty());
        assert_eq!(
            run(
                &facts(DType::F32, &[3], class_labels(3)),
                &reg,
                LossKind::BinaryCrossentropy
            ),
            ["E0503"]
        );
    }
}
