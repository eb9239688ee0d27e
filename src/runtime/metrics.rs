//! Metrics: running accumulators over the batches of an epoch.
//!
//! Input: per batch, the model output and its targets (a [`Targets`], as for the losses).
//! Output: [`MetricAccumulator::result`], the metric over every entry seen since the last
//! reset. Each batch adds its entry count and the sum of its per-entry values, so the epoch
//! value equals the value over the whole set regardless of how it was split into batches
//! (accuracy counts are integers, exact in f64 up to 2^53 entries; mae/mse sums are f64).
//!
//! Definitions (Keras):
//! - sparse categorical accuracy: `argmax(output row) == label`, one entry per row;
//! - categorical accuracy: `argmax(output row) == argmax(target row)`, one entry per row;
//! - binary accuracy: `(output > threshold) == target` per element (targets exactly 0 or 1);
//! - mae / mse: per element.
//!
//! argmax takes the first maximum; NaN never wins (a row of NaN predicts class 0).

use ndarray::ArrayViewD;
use serde::{Deserialize, Serialize};

use crate::runtime::loss::{class_labels, Loss, LossError, SparseLabels, Targets};

/// A metric as named in a `train` block (after `accuracy` is resolved against the loss).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Metric {
    /// Integer labels vs the argmax of the output.
    SparseCategoricalAccuracy,
    /// One-hot targets vs the argmax of the output.
    CategoricalAccuracy,
    /// 0/1 targets vs `output > threshold`.
    BinaryAccuracy {
        /// Decision threshold (0.5 for probabilities, 0 for logits).
        threshold: f32,
    },
    /// Mean absolute error.
    MeanAbsoluteError,
    /// Mean squared error.
    MeanSquaredError,
}

impl Metric {
    /// Keras's meaning of `accuracy` for a loss: sparse with sparse cross-entropy, categorical
    /// with categorical cross-entropy, binary otherwise (threshold 0 when the loss takes
    /// logits, 0.5 when it takes probabilities).
    pub fn accuracy_for(loss: Loss) -> Self {
        match loss {
            Loss::SparseCategoricalCrossentropy { .. } => Self::SparseCategoricalAccuracy,
            Loss::CategoricalCrossentropy { .. } => Self::CategoricalAccuracy,
            Loss::BinaryCrossentropy { from_logits: true } => {
                Self::BinaryAccuracy { threshold: 0.0 }
            }
            Loss::BinaryCrossentropy { from_logits: false }
            | Loss::MeanSquaredError
            | Loss::MeanAbsoluteError
            | Loss::Huber { .. }
            | Loss::LogCosh => Self::BinaryAccuracy { threshold: 0.5 },
        }
    }

    /// The metric's name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::SparseCategoricalAccuracy
            | Self::CategoricalAccuracy
            | Self::BinaryAccuracy { .. } => "accuracy",
            Self::MeanAbsoluteError => "mae",
            Self::MeanSquaredError => "mse",
        }
    }
}

/// A metric's running sum and entry count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAccumulator {
    metric: Metric,
    total: f64,
    count: u64,
}

impl MetricAccumulator {
    /// An empty accumulator.
    pub fn new(metric: Metric) -> Self {
        Self {
            metric,
            total: 0.0,
            count: 0,
        }
    }

    /// The metric accumulated.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Adds one batch. On error nothing is added.
    pub fn update(&mut self, output: &ArrayViewD<f32>, targets: &Targets) -> Result<(), LossError> {
        let (total, count) = batch_sum(self.metric, output, targets)?;
        self.total += total;
        self.count = self.count.saturating_add(count as u64);
        Ok(())
    }

    /// The metric over every entry since the last reset; `None` before any entry.
    pub fn result(&self) -> Option<f32> {
        (self.count > 0).then(|| (self.total / self.count as f64) as f32)
    }

    /// Forgets every batch (start of an epoch).
    pub fn reset(&mut self) {
        self.total = 0.0;
        self.count = 0;
    }
}

/// The index of the first maximum; NaN never wins.
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (index, &value) in row.iter().enumerate() {
        if value > best_value {
            best = index;
            best_value = value;
        }
    }
    best
}

/// The batch's sum of per-entry values and its entry count.
fn batch_sum(
    metric: Metric,
    output: &ArrayViewD<f32>,
    targets: &Targets,
) -> Result<(f64, usize), LossError> {
    let wrong_kind = |expected| LossError::TargetKind {
        loss: metric.name(),
        expected,
    };
    match (metric, targets) {
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

fn class_count(output: &ArrayViewD<f32>) -> Result<usize, LossError> {
    match output.shape().last() {
        Some(&classes) if classes > 0 => Ok(classes),
        _ => Err(LossError::NoClasses {
            output: output.shape().to_vec(),
        }),
    }
}

fn same_shape(output: &ArrayViewD<f32>, target: &ArrayViewD<f32>) -> Result<(), LossError> {
    if output.shape() == target.shape() {
        Ok(())
    } else {
        Err(LossError::ShapeMismatch {
            output: output.shape().to_vec(),
            target: target.shape().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, ArrayD, Axis, IxDyn};

    fn run(metric: Metric, output: &ArrayD<f32>, targets: &Targets) -> Option<f32> {
        let mut acc = MetricAccumulator::new(metric);
        acc.update(&output.view(), targets).unwrap();
        acc.result()
    }

    #[test]
    fn accuracies_by_hand() {
        // argmax: 1, 0, 0 (tie → first), 1 (NaN never wins)
        let output = array![[0.1_f32, 0.9], [0.8, 0.2], [0.5, 0.5], [f32::NAN, 0.3]].into_dyn();
        let labels = array![1_i64, 1, 0, 1].into_dyn();
        // hits: rows 0, 2 and 3
        let sparse = Targets::Sparse(SparseLabels::I64(labels.view()));
        assert_eq!(
            run(Metric::SparseCategoricalAccuracy, &output, &sparse),
            Some(0.75)
        );
        let onehot = array![[0.0_f32, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]].into_dyn();
        let dense = Targets::Dense(onehot.view());
        // hits: rows 0 and 2 (row 3 predicts class 1, its NaN ignored)
        assert_eq!(run(Metric::CategoricalAccuracy, &output, &dense), Some(0.5));

        let p = array![[0.6_f32, 0.4], [0.5, 0.9]].into_dyn();
        let t = array![[1.0_f32, 0.0], [1.0, 0.0]].into_dyn();
        let binary = Metric::BinaryAccuracy { threshold: 0.5 };
        // 0.5 is not > 0.5, so it predicts 0
        assert_eq!(run(binary, &p, &Targets::Dense(t.view())), Some(0.5));
        let logits = array![[2.0_f32, -1.0], [-0.1, -3.0]].into_dyn();
        let from_logits = Metric::accuracy_for(Loss::BinaryCrossentropy { from_logits: true });
        assert_eq!(
            run(from_logits, &logits, &Targets::Dense(t.view())),
            Some(0.75)
        );
    }

    #[test]
    fn regression_metrics_by_hand() {
        let y = array![[1.0_f32, 2.0], [3.0, 4.0]].into_dyn();
        let t = array![[1.5_f32, 2.0], [1.0, 5.0]].into_dyn();
        let dense = Targets::Dense(t.view());
        assert_eq!(run(Metric::MeanAbsoluteError, &y, &dense), Some(0.875));
        assert_eq!(run(Metric::MeanSquaredError, &y, &dense), Some(1.3125));
    }

    #[test]
    fn epoch_value_equals_whole_set_value() {
        let rows = 7;
        let output = ArrayD::from_shape_fn(IxDyn(&[rows, 3]), |i| {
            ((i[0] * 7 + i[1] * 3) % 5) as f32 * 0.25 - 0.3
        });
        let labels = ArrayD::from_shape_fn(IxDyn(&[rows]), |i| (i[0] % 3) as i32);
        let target = ArrayD::from_shape_fn(IxDyn(&[rows, 3]), |i| (i[0] + i[1]) as f32 * 0.1);
        for metric in [
            Metric::SparseCategoricalAccuracy,
            Metric::MeanAbsoluteError,
            Metric::MeanSquaredError,
        ] {
            let targets_of = |range: std::ops::Range<usize>| {
                if metric == Metric::SparseCategoricalAccuracy {
                    Targets::Sparse(SparseLabels::I32(
                        labels.slice_axis(Axis(0), range.into()).into_dyn(),
                    ))
                } else {
                    Targets::Dense(target.slice_axis(Axis(0), range.into()).into_dyn())
                }
            };
            let whole = run(metric, &output, &targets_of(0..rows)).unwrap();
            let mut acc = MetricAccumulator::new(metric);
            assert_eq!(acc.result(), None);
            for range in [0..3, 3..6, 6..7] {
                let batch = output.slice_axis(Axis(0), range.clone().into());
                acc.update(&batch.into_dyn(), &targets_of(range)).unwrap();
            }
            let batched = acc.result().unwrap();
            assert!((batched - whole).abs() <= 1e-7 * whole.abs(), "{metric:?}");
            acc.reset();
            assert_eq!(acc.result(), None);
        }
        // the accuracy itself, by hand: argmax of each row vs i % 3
        let hits = (0..rows)
            .filter(|&r| {
                let row: Vec<f32> = output.index_axis(Axis(0), r).iter().copied().collect();
                argmax(&row) == r % 3
            })
            .count();
        let sparse = Targets::Sparse(SparseLabels::I32(labels.view()));
        let accuracy = run(Metric::SparseCategoricalAccuracy, &output, &sparse);
        assert_eq!(accuracy, Some((hits as f64 / rows as f64) as f32));
    }

    #[test]
    fn bad_targets_leave_the_accumulator_unchanged() {
        let mut acc = MetricAccumulator::new(Metric::SparseCategoricalAccuracy);
        let output = array![[0.1_f32, 0.9], [0.8, 0.2]].into_dyn();
        let good = array![1_u32, 0].into_dyn();
        acc.update(
            &output.view(),
            &Targets::Sparse(SparseLabels::U32(good.view())),
        )
        .unwrap();
        let before = acc.clone();
        let bad = array![1_u32, 2].into_dyn();
        let err = acc
            .update(
                &output.view(),
                &Targets::Sparse(SparseLabels::U32(bad.view())),
            )
            .unwrap_err();
        assert_eq!(
            err,
            LossError::LabelOutOfRange {
                row: 1,
                label: 2,
                classes: 2
            }
        );
        assert!(acc
            .update(&output.view(), &Targets::Dense(output.view()))
            .is_err());
        assert_eq!(acc, before);
        let mut mae = MetricAccumulator::new(Metric::MeanAbsoluteError);
        let short = array![1.0_f32].into_dyn();
        assert!(matches!(
            mae.update(&output.view(), &Targets::Dense(short.view())),
            Err(LossError::ShapeMismatch { .. })
        ));
        assert_eq!(mae.result(), None);
    }

    #[test]
    fn accuracy_follows_the_loss() {
        assert_eq!(
            Metric::accuracy_for(Loss::SparseCategoricalCrossentropy { from_logits: false }),
            Metric::SparseCategoricalAccuracy
        );
        assert_eq!(
            Metric::accuracy_for(Loss::CategoricalCrossentropy { from_logits: true }),
            Metric::CategoricalAccuracy
        );
        assert_eq!(
            Metric::accuracy_for(Loss::BinaryCrossentropy { from_logits: false }),
            Metric::BinaryAccuracy { threshold: 0.5 }
        );
    }
}
