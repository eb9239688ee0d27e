//! Confusion counts: how many entries of each true class were predicted as each class, and
//! the precision, recall and f1 they give (per class, and the summary the metrics log).
//!
//! Input: a batch's output and targets with a [`Task`]. Output: a [`ConfusionMatrix`]
//! (`classes × classes` integer counts, rows the true class, columns the predicted one), added
//! batch by batch. A binary task has two classes, 0 and 1 (the positive one), each element one
//! entry: predicted `output > threshold`, true `target != 0` (Keras casts targets to bool). A
//! multi-class task has one entry per row: predicted the argmax, true the label or the argmax
//! of the one-hot target row. Counts are integers, so the totals do not depend on batching.

use ndarray::ArrayViewD;
use serde::Serialize;

use super::{argmax, class_count, same_shape, true_classes, Task};
use crate::runtime::loss::{LossError, Targets};

/// Counts of (true class, predicted class).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfusionMatrix {
    classes: usize,
    binary: bool,
    /// Row-major `classes × classes`: `counts[true * classes + predicted]`.
    counts: Vec<u64>,
}

/// One class's figures, as in scikit-learn's `classification_report`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Entries whose true class is this one.
    pub support: u64,
}

/// `numerator / denominator`, 0 when the denominator is 0.
fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

impl ConfusionMatrix {
    /// No entries over `classes` classes (`binary`: class 1 is the positive class).
    pub fn empty(classes: usize, binary: bool) -> Self {
        Self {
            classes,
            binary,
            counts: vec![0; classes.saturating_mul(classes)],
        }
    }

    /// The counts of one batch.
    pub fn of_batch(
        task: Task,
        output: &ArrayViewD<f32>,
        targets: &Targets,
    ) -> Result<Self, LossError> {
        match task {
            Task::Binary { threshold } => {
                let Targets::Dense(target) = targets else {
                    return Err(LossError::TargetKind {
                        loss: "binary precision and recall",
                        expected: "float 0/1 targets shaped like the output",
                    });
                };
                same_shape(output, target)?;
                let mut m = Self::empty(2, true);
                for (&y, &t) in output.iter().zip(target.iter()) {
                    m.count(usize::from(t != 0.0), usize::from(y > threshold));
                }
                Ok(m)
            }
            Task::MultiClass { .. } => {
                let classes = class_count(output)?;
                let truth = true_classes(output, targets)?;
                let scores: Vec<f32> = output.iter().copied().collect();
                let mut m = Self::empty(classes, false);
                for (row, &class) in scores.chunks_exact(classes).zip(&truth) {
                    m.count(class, argmax(row));
                }
                Ok(m)
            }
        }
    }

    /// The matrix as `(classes, binary, row-major counts)`, for a checkpoint.
    pub(super) fn parts(&self) -> (usize, bool, &[u64]) {
        (self.classes, self.binary, &self.counts)
    }

    /// A matrix from [`Self::parts`] read back from an untrusted file: refused unless the
    /// counts are `classes × classes` (two classes when binary).
    pub(super) fn from_parts(
        classes: usize,
        binary: bool,
        counts: Vec<u64>,
    ) -> Result<Self, String> {
        if classes == 0 || (binary && classes != 2) {
            return Err(format!("a confusion matrix of {classes} classes"));
        }
        if classes.checked_mul(classes) != Some(counts.len()) {
            return Err(format!(
                "a confusion matrix of {classes} classes with {} counts",
                counts.len()
            ));
        }
        Ok(Self {
            classes,
            binary,
            counts,
        })
    }

    fn count(&mut self, truth: usize, predicted: usize) {
        if let Some(c) = self.counts.get_mut(truth * self.classes + predicted) {
            *c += 1;
        }
    }

    /// Adds another matrix's counts; an error (nothing added) if the class counts differ.
    pub fn add(&mut self, other: &Self) -> Result<(), LossError> {
        if other.classes != self.classes || other.binary != self.binary {
            return Err(LossError::ShapeMismatch {
                output: vec![self.classes],
                target: vec![other.classes],
            });
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        Ok(())
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Whether this counts a binary output's elements (class 1 positive).
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// Entries of true class `truth` predicted as `predicted`.
    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts
            .get(truth * self.classes + predicted)
            .copied()
            .unwrap_or(0)
    }

    /// Every entry counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The correctly predicted share of the entries (0 when empty).
    pub fn accuracy(&self) -> f64 {
        let hits = (0..self.classes).map(|c| self.get(c, c)).sum();
        ratio(hits, self.total())
    }

    /// Precision, recall, f1 and support of class `c`; a ratio with a zero denominator is 0.
    pub fn class_scores(&self, c: usize) -> ClassScores {
        let tp = self.get(c, c);
        let predicted: u64 = (0..self.classes).map(|t| self.get(t, c)).sum();
        let support: u64 = (0..self.classes).map(|p| self.get(c, p)).sum();
        let fp = predicted - tp;
        let fn_ = support - tp;
        ClassScores {
            precision: ratio(tp, predicted),
            recall: ratio(tp, support),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
            support,
        }
    }

    /// The mean over classes of one per-class figure.
    fn macro_average(&self, pick: impl Fn(ClassScores) -> f64) -> f64 {
        if self.classes == 0 {
            return 0.0;
        }
        let sum: f64 = (0..self.classes).map(|c| pick(self.class_scores(c))).sum();
        sum / self.classes as f64
    }

    /// The logged figure: class 1's for a binary output, else the macro average.
    fn summary(&self, pick: impl Fn(ClassScores) -> f64) -> f64 {
        if self.binary {
            pick(self.class_scores(1))
        } else {
            self.macro_average(pick)
        }
    }

    /// The `precision` metric (positive class, or macro).
    pub fn summary_precision(&self) -> f64 {
        self.summary(|s| s.precision)
    }

    /// The `recall` metric (positive class, or macro).
    pub fn summary_recall(&self) -> f64 {
        self.summary(|s| s.recall)
    }

    /// The `f1` metric (positive class, or macro).
    pub fn summary_f1(&self) -> f64 {
        self.summary(|s| s.f1)
    }

    /// Macro averages over every class (as scikit-learn's report's `macro avg` row).
    pub fn macro_scores(&self) -> ClassScores {
        ClassScores {
            precision: self.macro_average(|s| s.precision),
            recall: self.macro_average(|s| s.recall),
            f1: self.macro_average(|s| s.f1),
            support: self.total(),
        }
    }
}
