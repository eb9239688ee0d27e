//! Metrics: running accumulators over the batches of an epoch.
//!
//! Input: per batch, the model output and its targets (a [`Targets`], as for the losses).
//! Output: [`MetricAccumulator::result`], the metric over every entry seen since the last
//! reset. Every metric is epoch-level: each batch adds counts (or scores) to the accumulator
//! and the result is computed from the totals, so the epoch value equals the value over the
//! whole set regardless of how it was split into batches. Batches are added in the order the
//! loop sees them and nothing is reduced across threads, so results are the same for any
//! thread count.
//!
//! One home per concern:
//! - `mean.rs`: metrics that are a mean of per-entry values (the accuracies, mae, mse,
//!   top-k accuracy): an f64 sum and an entry count (hit counts are exact up to 2^53);
//! - `confusion.rs`: [`ConfusionMatrix`], counts of (true class, predicted class), from which
//!   precision, recall and f1 come (also `modelc eval`'s per-class report);
//! - `auc.rs`: the exact ROC AUC of the epoch's scores;
//! - `saved.rs`: an accumulator's totals as data, for checkpoints taken mid-epoch.
//!
//! Definitions (Keras):
//! - sparse categorical accuracy: `argmax(output row) == label`, one entry per row;
//! - categorical accuracy: `argmax(output row) == argmax(target row)`, one entry per row;
//! - binary accuracy: `(output > threshold) == target` per element (targets exactly 0 or 1);
//! - mae / mse: per element;
//! - top-k accuracy: the row's true class is among the `k` largest scores (Keras
//!   `SparseTopKCategoricalAccuracy` / `TopKCategoricalAccuracy`); ties at the boundary count
//!   as hits, as TensorFlow's `in_top_k`: a hit when fewer than `k` classes score strictly more;
//! - precision, recall, f1 of a [`Task::Binary`] output: every element is a prediction
//!   `output > threshold` of the positive class against `target != 0` (Keras `Precision()`,
//!   `Recall()`, and f1 `2PR/(P+R)`); of a [`Task::MultiClass`] output: the macro average over
//!   the output's classes of the per-class values from the argmax prediction, a class whose
//!   ratio has a zero denominator counting 0 (Keras 3 `F1Score(average="macro")`'s convention);
//! - auc: see `auc.rs`.
//!
//! argmax takes the first maximum; NaN never wins (a row of NaN predicts class 0).

mod auc;
mod confusion;
mod mean;
mod saved;
#[cfg(test)]
mod tests;

use ndarray::ArrayViewD;
use serde::{Deserialize, Serialize};

pub use auc::roc_auc;
pub use confusion::{ClassScores, ConfusionMatrix};
pub use saved::{Column, SavedMetric, Totals};

use crate::runtime::loss::{Loss, LossError, Targets};

/// What a classification metric compares, from the loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Task {
    /// Each element a yes/no prediction (binary cross-entropy).
    Binary {
        /// Decision threshold (0.5 for probabilities, 0 for logits).
        threshold: f32,
    },
    /// One class per row of the last axis (the categorical cross-entropies): integer labels or
    /// one-hot target rows.
    MultiClass {
        /// The output is logits: AUC takes the softmax of each row as its scores.
        from_logits: bool,
    },
}

impl Task {
    /// The task of a classification loss; `None` for a regression loss.
    pub fn of(loss: Loss) -> Option<Self> {
        match loss {
            Loss::BinaryCrossentropy { from_logits } => Some(Self::Binary {
                threshold: if from_logits { 0.0 } else { 0.5 },
            }),
            Loss::CategoricalCrossentropy { from_logits }
            | Loss::SparseCategoricalCrossentropy { from_logits } => {
                Some(Self::MultiClass { from_logits })
            }
            Loss::MeanSquaredError
            | Loss::MeanAbsoluteError
            | Loss::Huber { .. }
            | Loss::LogCosh => None,
        }
    }
}

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
    /// Precision of the positive class (binary) or macro over classes.
    Precision(Task),
    /// Recall of the positive class (binary) or macro over classes.
    Recall(Task),
    /// F1 of the positive class (binary) or macro over classes.
    F1(Task),
    /// ROC AUC (binary) or macro one-vs-rest over classes.
    Auc(Task),
    /// The true class among the `k` best scores (labels or one-hot rows, by the targets).
    TopKAccuracy {
        /// How many of the best scores count.
        k: usize,
    },
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
            Self::Precision(_) => "precision",
            Self::Recall(_) => "recall",
            Self::F1(_) => "f1",
            Self::Auc(_) => "auc",
            Self::TopKAccuracy { .. } => "top_k_accuracy",
        }
    }
}

/// What an accumulator has counted so far.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// A sum of per-entry values and the entry count.
    Mean { total: f64, count: u64 },
    /// Confusion counts (created at the first batch, when the class count is known).
    Confusion(Option<ConfusionMatrix>),
    /// Every (score, truth) seen, for the AUC.
    Scores(auc::Scores),
}

/// A metric's running totals.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricAccumulator {
    metric: Metric,
    state: State,
}

impl MetricAccumulator {
    /// An empty accumulator.
    pub fn new(metric: Metric) -> Self {
        let state = match metric {
            Metric::Precision(_) | Metric::Recall(_) | Metric::F1(_) => State::Confusion(None),
            Metric::Auc(_) => State::Scores(auc::Scores::default()),
            _ => State::Mean {
                total: 0.0,
                count: 0,
            },
        };
        Self { metric, state }
    }

    /// The metric accumulated.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Adds one batch. On error nothing is added.
    pub fn update(&mut self, output: &ArrayViewD<f32>, targets: &Targets) -> Result<(), LossError> {
        match (&mut self.state, self.metric) {
            (State::Mean { total, count }, metric) => {
                let (sum, entries) = mean::batch_sum(metric, output, targets)?;
                *total += sum;
                *count = count.saturating_add(entries as u64);
            }
            (
                State::Confusion(matrix),
                Metric::Precision(task) | Metric::Recall(task) | Metric::F1(task),
            ) => {
                let batch = ConfusionMatrix::of_batch(task, output, targets)?;
                match matrix {
                    Some(m) => m.add(&batch)?,
                    None => *matrix = Some(batch),
                }
            }
            (State::Scores(scores), Metric::Auc(task)) => scores.add(task, output, targets)?,
            (_, metric) => {
                return Err(LossError::TargetKind {
                    loss: metric.name(),
                    expected: "a state of its own kind",
                })
            }
        }
        Ok(())
    }

    /// The metric over every entry since the last reset; `None` before any entry.
    pub fn result(&self) -> Option<f32> {
        match (&self.state, self.metric) {
            (State::Mean { total, count }, _) => {
                (*count > 0).then(|| (*total / *count as f64) as f32)
            }
            (State::Confusion(matrix), metric) => {
                let m = matrix.as_ref().filter(|m| m.total() > 0)?;
                Some(match metric {
                    Metric::Precision(_) => m.summary_precision(),
                    Metric::Recall(_) => m.summary_recall(),
                    _ => m.summary_f1(),
                } as f32)
            }
            (State::Scores(scores), _) => scores.auc().map(|a| a as f32),
        }
    }

    /// Forgets every batch (start of an epoch).
    pub fn reset(&mut self) {
        *self = Self::new(self.metric);
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

/// The true class of each row of a multi-class output: the label, or the argmax of the
/// target row.
fn true_classes(output: &ArrayViewD<f32>, targets: &Targets) -> Result<Vec<usize>, LossError> {
    let classes = class_count(output)?;
    match targets {
        Targets::Sparse(labels) => crate::runtime::loss::class_labels(output, labels, classes),
        Targets::Dense(target) => {
            same_shape(output, target)?;
            let expected: Vec<f32> = target.iter().copied().collect();
            Ok(expected.chunks_exact(classes).map(argmax).collect())
        }
    }
}
