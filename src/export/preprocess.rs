//! The fitted preprocessing of a trained run's plan (the data pipeline's `map` steps, as
//! `modelc run` applies them) as ONNX nodes in front of the model's input, so the exported
//! graph takes the raw rows `modelc run` takes.
//!
//! Input: the plan's steps and the model input's fact. Output: the raw input's fact and the
//! name of the value the model reads. Per step: `scale` → `Mul`/`Add`; `standardize` /
//! `normalize` → `Sub` of the fitted shift, `Div` by the fitted scale (per last-axis feature);
//! `reshape` → `Reshape` (the raw rows taken flat, `[N, prod(shape)]`); `resize` → `Resize`
//! (linear, half-pixel, on the channels-first form); `pad` → `Pad` + `Slice` to the length;
//! `one_hot` touches labels only. Steps that work across samples (`moving_average`, `window`)
//! have no per-row form: an [`ExportError::Unsupported`] that suggests `--no-preprocessing`.

use super::ExportError;
use crate::data::spec::{Step, Transform};
use crate::ops::onnx::{Attr, OnnxGraph};
use crate::ops::types::{DType, Dim, Fact};

/// Emits `steps` reading the raw input `name`; returns the raw fact and the model's input name.
pub fn emit(
    graph: &mut OnnxGraph,
    steps: &[Step<Transform>],
    name: &str,
    model_input: &Fact,
) -> Result<(Fact, String), ExportError> {
    let raw = raw_fact(steps, model_input)?;
    let mut x = name.to_string();
    let mut fact = raw.clone();
    for step in steps {
        (x, fact) = emit_step(graph, &step.op, x, fact)?;
    }
    Ok((raw, x))
}

fn unsupported(what: &str, reason: &str) -> ExportError {
    ExportError::Unsupported {
        layer: format!("preprocessing step `{what}`"),
        reason: format!("{reason}; export with `--no-preprocessing` and apply it before the model"),
    }
}

fn batch(model_input: &Fact) -> Dim {
    model_input
        .dims
        .first()
        .cloned()
        .unwrap_or_else(|| Dim::Symbol("N".into()))
}

/// The fact of the raw rows: the model input's, walked back through the steps.
pub(crate) fn raw_fact(steps: &[Step<Transform>], model_input: &Fact) -> Result<Fact, ExportError> {
    let mut fact = model_input.clone();
    for step in steps.iter().rev() {
        fact = match &step.op {
            Transform::Standardize { .. }
            | Transform::Normalize { .. }
            | Transform::Scale { .. }
            | Transform::OneHot { .. } => fact,
            Transform::Reshape { shape } => {
                let elements = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                let elements =
                    elements.ok_or_else(|| unsupported("reshape", "its size overflows"))?;
                Fact::new(fact.dtype, vec![batch(model_input), Dim::Known(elements)])
            }
            Transform::Resize { .. } => {
                let c = fact.dims.get(3).cloned().unwrap_or(Dim::Known(1));
                let (h, w) = (Dim::Symbol("H".into()), Dim::Symbol("W".into()));
                Fact::new(DType::F32, vec![batch(model_input), h, w, c])
            }
            Transform::Pad { .. } => Fact::new(
                fact.dtype,
                vec![batch(model_input), Dim::Symbol("L".into())],
            ),
            Transform::MovingAverage { .. } => {
                return Err(unsupported("moving_average", "it averages across samples"))
            }
            Transform::Window { .. } => {
                return Err(unsupported(
                    "window",
                    "it builds each sample from several rows",
                ))
            }
        };
    }
    Ok(fact)
}

fn emit_step(
    graph: &mut OnnxGraph,
    op: &Transform,
    x: String,
    fact: Fact,
) -> Result<(String, Fact), ExportError> {
    let base = "preprocess";
    let scalar = |graph: &mut OnnxGraph, what: &str, v: f32| {
        graph.f32_tensor(&format!("{base}/{what}"), vec![], vec![v])
    };
    match op {
        Transform::Scale { factor, offset } => {
            let m = scalar(graph, "factor", *factor as f32);
            let b = scalar(graph, "offset", *offset as f32);
            let y = graph.node("Mul", &format!("{base}/scale"), vec![x, m], vec![]);
            let y = graph.node("Add", &format!("{base}/offset"), vec![y, b], vec![]);
            Ok((y, fact))
        }
        Transform::Standardize { fitted } | Transform::Normalize { fitted } => {
            let name = if matches!(op, Transform::Standardize { .. }) {
                "standardize"
            } else {
                "normalize"
            };
            let fitted = fitted
                .as_ref()
                .ok_or_else(|| unsupported(name, "its statistics were never fitted"))?;
            let shift = graph.f32_tensor(
                &format!("{base}/{name}_shift"),
                vec![fitted.shift.len()],
                fitted.shift.clone(),
            );
            let scale = graph.f32_tensor(
                &format!("{base}/{name}_scale"),
                vec![fitted.scale.len()],
                fitted.scale.clone(),
            );
            let y = graph.node("Sub", &format!("{base}/{name}_sub"), vec![x, shift], vec![]);
            let y = graph.node("Div", &format!("{base}/{name}"), vec![y, scale], vec![]);
            Ok((y, fact))
        }
        Transform::OneHot { .. } => Ok((x, fact)),
        Transform::Reshape { shape } => {
            let target: Vec<i64> = std::iter::once(0)
                .chain(shape.iter().map(|&d| d as i64))
                .collect();
            let target = graph.i64_vector(&format!("{base}/shape"), target);
            let y = graph.node(
                "Reshape",
                &format!("{base}/reshape"),
                vec![x, target],
                vec![],
            );
            let mut dims = vec![fact.dims.first().cloned().unwrap_or(Dim::Known(1))];
            dims.extend(shape.iter().map(|&d| Dim::Known(d)));
            Ok((y, Fact::new(fact.dtype, dims)))
        }
        Transform::Resize { height, width } => resize(graph, x, &fact, *height, *width),
        Transform::Pad { length, value } => {
            let pads = graph.i64_vector(&format!("{base}/pads"), vec![0, 0, 0, *length as i64]);
            // The fill value in the ids' dtype, as a scalar.
            let value_t = graph.i64_vector(&format!("{base}/pad_fill"), vec![*value]);
            let fill_scalar = graph.node(
                "Cast",
                &format!("{base}/pad_fill_cast"),
                vec![value_t],
                vec![(
                    "to",
                    Attr::Int(i64::from(crate::ops::onnx::onnx_dtype(fact.dtype))),
                )],
            );
            let shape1 = graph.i64_vector(&format!("{base}/scalar_shape"), vec![]);
            let fill_scalar = graph.node(
                "Reshape",
                &format!("{base}/pad_fill_scalar"),
                vec![fill_scalar, shape1],
                vec![],
            );
            let padded = graph.node(
                "Pad",
                &format!("{base}/pad"),
                vec![x, pads, fill_scalar],
                vec![],
            );
            let starts = graph.i64_vector(&format!("{base}/slice_starts"), vec![0]);
            let ends = graph.i64_vector(&format!("{base}/slice_ends"), vec![*length as i64]);
            let axes = graph.i64_vector(&format!("{base}/slice_axes"), vec![1]);
            let y = graph.node(
                "Slice",
                &format!("{base}/truncate"),
                vec![padded, starts, ends, axes],
                vec![],
            );
            let dims = vec![
                fact.dims.first().cloned().unwrap_or(Dim::Known(1)),
                Dim::Known(*length),
            ];
            Ok((y, Fact::new(fact.dtype, dims)))
        }
        Transform::MovingAverage { .. } => {
            Err(unsupported("moving_average", "it averages across samples"))
        }
        Transform::Window { .. } => Err(unsupported(
            "window",
            "it builds each sample from several rows",
        )),
    }
}

/// Bilinear resize of `[N, h, w, c]` to `[N, height, width, c]`, half-pixel centres.
fn resize(
    graph: &mut OnnxGraph,
    x: String,
    fact: &Fact,
    height: usize,
    width: usize,
) -> Result<(String, Fact), ExportError> {
    let base = "preprocess";
    let c = fact
        .dims
        .get(3)
        .and_then(Dim::known)
        .ok_or_else(|| unsupported("resize", "its input is not [h, w, c] images"))?;
    let nchw = graph.node(
        "Transpose",
        &format!("{base}/resize_nchw"),
        vec![x],
        vec![("perm", Attr::Ints(vec![0, 3, 1, 2]))],
    );
    // The output size of every axis: the batch from the input, the rest fixed.
    let shape = graph.node(
        "Shape",
        &format!("{base}/resize_in_shape"),
        vec![nchw.clone()],
        vec![],
    );
    let starts = graph.i64_vector(&format!("{base}/batch_start"), vec![0]);
    let ends = graph.i64_vector(&format!("{base}/batch_end"), vec![1]);
    let n = graph.node(
        "Slice",
        &format!("{base}/batch_size"),
        vec![shape, starts, ends],
        vec![],
    );
    let rest = graph.i64_vector(
        &format!("{base}/resize_chw"),
        vec![c as i64, height as i64, width as i64],
    );
    let sizes = graph.node(
        "Concat",
        &format!("{base}/resize_sizes"),
        vec![n, rest],
        vec![("axis", Attr::Int(0))],
    );
    let y = graph.node(
        "Resize",
        &format!("{base}/resize"),
        vec![nchw, String::new(), String::new(), sizes],
        vec![
            (
                "coordinate_transformation_mode",
                Attr::Text("half_pixel".into()),
            ),
            ("mode", Attr::Text("linear".into())),
        ],
    );
    let y = graph.node(
        "Transpose",
        &format!("{base}/resized"),
        vec![y],
        vec![("perm", Attr::Ints(vec![0, 2, 3, 1]))],
    );
    let dims = vec![
        fact.dims.first().cloned().unwrap_or(Dim::Known(1)),
        Dim::Known(height),
        Dim::Known(width),
        Dim::Known(c),
    ];
    Ok((y, Fact::new(DType::F32, dims)))
}
