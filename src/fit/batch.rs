//! One batch as the trainer and the loss take it: the features as the model's input (token ids
//! converted to the model's integer type), and the targets: the labels, or with `target inputs`
//! the features themselves, prepared for the loss (binary class ids as floats, label
//! smoothing) and left as they are for the metrics.

use super::failed;
use super::setup::{Objective, TargetPrep};
use crate::check::train_types::Target;
use crate::data::loader::Batch;
use crate::data::samples::{Features, Labels};
use crate::diag::Diagnostic;
use crate::runtime::loss::{SparseLabels, Targets};
use crate::runtime::train::Input;
use ndarray::ArrayD;

/// Runs `f` with a batch's features as trainer inputs, its labels (or, with `target inputs`,
/// its features as the model gets them) as the loss's targets (after `prep`: class ids as
/// floats for binary cross-entropy, label smoothing) and as the metrics' targets (never
/// smoothed, as in Keras). Token ids (i64 in pipelines) become i32 when the model takes i32,
/// with a range check.
pub(super) fn with_batch<T>(
    batch: &Batch,
    input_dtype: Option<crate::ir::DType>,
    objective: &Objective,
    f: impl FnOnce(&[Input<'_>], &Targets<'_>, &Targets<'_>) -> Result<T, Diagnostic>,
) -> Result<T, Diagnostic> {
    let prep = objective.prep;
    let labels = match objective.target {
        Target::Labels => &batch.labels,
        Target::Inputs => &Labels::None,
    };
    let converted = converted(batch, input_dtype)?;
    let inputs = inputs(batch, converted.as_ref())?;
    let class_view;
    let as_floats = match labels {
        Labels::Class(ids) => prep.class_ids(ids),
        _ => None,
    };
    let targets = match (labels, &as_floats) {
        (_, Some(t)) => Targets::Dense(t.view()),
        (Labels::None, None) if objective.target == Target::Inputs => match &batch.features {
            Features::F32(a) => Targets::Dense(a.view()),
            // `check` refuses `target inputs` on token ids and several inputs (E0522)
            Features::I64(_) | Features::Groups(_) => {
                return Err(failed("`target inputs` needs one float input"))
            }
        },
        (Labels::Class(ids), None) => {
            class_view = ndarray::ArrayView1::from(ids.as_slice()).into_dyn();
            Targets::Sparse(SparseLabels::I64(class_view))
        }
        (Labels::Values(v), None) => Targets::Dense(v.view()),
        (Labels::None, None) => return Err(failed("the data has no labels to train on")),
        (Labels::Outputs(_), None) => {
            return Err(failed(
                "a label set per output needs a model with several outputs",
            ))
        }
    };
    let smoothed = match &targets {
        Targets::Dense(t) => prep.smooth(t),
        Targets::Sparse(_) => None,
    };
    match &smoothed {
        Some(s) => f(&inputs, &Targets::Dense(s.view()), &targets),
        None => f(&inputs, &targets, &targets),
    }
}

/// The batch's token ids as i32 when the model takes i32 (with a range check), else `None`.
fn converted(
    batch: &Batch,
    input_dtype: Option<crate::ir::DType>,
) -> Result<Option<ArrayD<i32>>, Diagnostic> {
    match (&batch.features, input_dtype) {
        (Features::I64(a), Some(crate::ir::DType::I32)) => {
            let mut out = ArrayD::<i32>::zeros(a.raw_dim());
            for (o, &v) in out.iter_mut().zip(a.iter()) {
                *o = i32::try_from(v).map_err(|_| {
                    failed(&format!("token id {v} does not fit the model's i32 input"))
                })?;
            }
            Ok(Some(out))
        }
        _ => Ok(None),
    }
}

/// The trainer inputs of a batch: its features (or `converted` ids), one per input group.
fn inputs<'a>(
    batch: &'a Batch,
    converted: Option<&'a ArrayD<i32>>,
) -> Result<Vec<Input<'a>>, Diagnostic> {
    Ok(match (&batch.features, converted) {
        (_, Some(c)) => vec![Input::I32(c.view())],
        (Features::F32(a), None) => vec![Input::F32(a.view())],
        (Features::I64(a), None) => vec![Input::I64(a.view())],
        // One input per group, in the `inputs` line's order (`check` makes it the model's).
        (Features::Groups(groups), None) => groups
            .iter()
            .map(|g| match &g.features {
                Features::F32(a) => Ok(Input::F32(a.view())),
                Features::I64(a) => Ok(Input::I64(a.view())),
                Features::Groups(_) => Err(failed("input groups hold no groups")),
            })
            .collect::<Result<_, _>>()?,
    })
}

/// [`with_batch`] for a model with several outputs: `f` gets the inputs, then per output (in
/// order, one label set each, with that output's `preps` entry applied) the loss's targets and
/// the metrics' targets.
pub(super) fn with_output_batch<T>(
    batch: &Batch,
    input_dtype: Option<crate::ir::DType>,
    preps: &[TargetPrep],
    f: impl FnOnce(&[Input<'_>], &[Targets<'_>], &[Targets<'_>]) -> Result<T, Diagnostic>,
) -> Result<T, Diagnostic> {
    let sets = batch.labels.sets();
    if sets.len() != preps.len() {
        // `check` matches the label sets to the outputs (E0529).
        return Err(failed(&format!(
            "the data gives {} label sets for {} outputs",
            sets.len(),
            preps.len()
        )));
    }
    let converted = converted(batch, input_dtype)?;
    let inputs = inputs(batch, converted.as_ref())?;
    let floats: Vec<Option<ArrayD<f32>>> = sets
        .iter()
        .zip(preps)
        .map(|(l, p)| match l {
            Labels::Class(ids) => p.class_ids(ids),
            _ => None,
        })
        .collect();
    let truth = sets
        .iter()
        .zip(&floats)
        .map(|(l, as_floats)| match (l, as_floats) {
            (_, Some(t)) => Ok(Targets::Dense(t.view())),
            (Labels::Class(ids), None) => Ok(Targets::Sparse(SparseLabels::I64(
                ndarray::ArrayView1::from(ids.as_slice()).into_dyn(),
            ))),
            (Labels::Values(v), None) => Ok(Targets::Dense(v.view())),
            (Labels::None | Labels::Outputs(_), None) => {
                Err(failed("an output has no labels to train on"))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let smoothed: Vec<Option<ArrayD<f32>>> = truth
        .iter()
        .zip(preps)
        .map(|(t, p)| match t {
            Targets::Dense(d) => p.smooth(d),
            Targets::Sparse(_) => None,
        })
        .collect();
    let targets: Vec<Targets<'_>> = truth
        .iter()
        .zip(&smoothed)
        .map(|(t, s)| match s {
            Some(s) => Targets::Dense(s.view()),
            None => t.clone(),
        })
        .collect();
    f(&inputs, &targets, &truth)
}
