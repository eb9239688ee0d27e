//! The metrics that are a mean of per-entry values: the accuracies, mae, mse and top-k
//! accuracy. Each batch gives the sum of its entries' values and its entry count.

use ndarray::ArrayViewD;

use super::{argmax, class_count, same_shape, true_classes, Metric};
use crate::runtime::loss::{class_labels, LossError, SparseLabels, Targets};

/// The batch's sum of per-entry values and its entry count.
pub(super) fn batch_sum(
    metric: Metric,
    output: &ArrayViewD<f32>,
    targets: &Targets,
) -> Result<(f64, usize), LossError> {
    let wrong_kind = |expected| LossError::TargetKind {
        loss: metric.name(),
        expected,
    };
    match (metric, targets) {
        (Metric::TopKAccuracy { k }, _) => top_k(output, targets, k),
        (Metric::SparseCategoricalAccuracy, Targets::Sparse(labels)) => {
            sparse_accuracy(output, labels)
        }
        (Metric::SparseCategoricalAccuracy, Targets::Dense(_)) => {
            Err(wrong_kind("integer class labels"))
        }
        (_, Targets::Sparse(_)) => Err(wrong_kind("float targets shaped like the output")),
        (Metric::CategoricalAccuracy, Targets::Dense(target)) => {
            let classes = class_count(output)?;
            same_shape(output, target)?;
            let predicted: Vec<f32> = output.iter().copied().collect();
            let expected: Vec<f32> = target.iter().copied().collect();
            let hits = predicted
                .chunks_exact(classes)
                .zip(expected.chunks_exact(classes))
                .filter(|(p, t)| argmax(p) == argmax(t))
                .count();
            Ok((hits as f64, predicted.len() / classes))
        }
        (Metric::BinaryAccuracy { threshold }, Targets::Dense(target)) => {
            same_shape(output, target)?;
            let hits = output
                .iter()
                .zip(target.iter())
                .filter(|(&y, &t)| binary_hit(y, t, threshold))
                .count();
            Ok((hits as f64, output.len()))
        }
        (Metric::MeanAbsoluteError, Targets::Dense(target)) => {
            same_shape(output, target)?;
            let sum = output
                .iter()
                .zip(target.iter())
                .map(|(&y, &t)| (f64::from(y) - f64::from(t)).abs())
                .sum();
            Ok((sum, output.len()))
        }
        (Metric::MeanSquaredError, Targets::Dense(target)) => {
            same_shape(output, target)?;
            let sum = output
                .iter()
                .zip(target.iter())
                .map(|(&y, &t)| (f64::from(y) - f64::from(t)).powi(2))
                .sum();
            Ok((sum, output.len()))
        }
        (
            Metric::Precision(_) | Metric::Recall(_) | Metric::F1(_) | Metric::Auc(_),
            Targets::Dense(_),
        ) => Err(wrong_kind("an accumulator of counts, not of means")),
    }
}

/// Keras binary accuracy of one element: the 0/1 prediction equals the target exactly.
#[allow(clippy::float_cmp)] // exact on purpose: a target of 0.7 is never matched, as in Keras
fn binary_hit(output: f32, target: f32, threshold: f32) -> bool {
    f32::from(u8::from(output > threshold)) == target
}

fn sparse_accuracy(
    output: &ArrayViewD<f32>,
    labels: &SparseLabels,
) -> Result<(f64, usize), LossError> {
    let classes = class_count(output)?;
    let labels = class_labels(output, labels, classes)?;
    let predicted: Vec<f32> = output.iter().copied().collect();
    let hits = predicted
        .chunks_exact(classes)
        .zip(&labels)
        .filter(|(row, &label)| argmax(row) == label)
        .count();
    Ok((hits as f64, labels.len()))
}

/// Rows whose true class is in the top `k`: fewer than `k` classes score strictly more than
/// it (ties at the boundary are hits, as TensorFlow's `in_top_k`); a NaN true score misses and
/// a NaN elsewhere never outscores it.
fn top_k(output: &ArrayViewD<f32>, targets: &Targets, k: usize) -> Result<(f64, usize), LossError> {
    let classes = class_count(output)?;
    let truth = true_classes(output, targets)?;
    let scores: Vec<f32> = output.iter().copied().collect();
    let hits = scores
        .chunks_exact(classes)
        .zip(&truth)
        .filter(|(row, &class)| {
            let Some(&own) = row.get(class) else {
                return false;
            };
            !own.is_nan() && row.iter().filter(|&&s| s > own).count() < k
        })
        .count();
    Ok((hits as f64, truth.len()))
}
