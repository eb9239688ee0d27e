//! ROC AUC, exact: the area under the ROC curve of every score seen in the epoch.
//!
//! Input: a batch's output and targets with a [`Task`]; the scores are kept (in batch order)
//! until the epoch's result. Output: the AUC, computed from the scores sorted in decreasing
//! order, entries with equal scores taken as one step of the curve (a diagonal segment), which
//! is the Mann-Whitney statistic `P(score of a positive > score of a negative)` with ties
//! counted one half. Keras's `AUC()` approximates the same area with 200 thresholds and
//! interpolation, so its numbers differ slightly.
//!
//! A binary task scores every element (positive where the target is not 0); a multi-class task
//! is the macro average of one-vs-rest AUCs (class `c`'s column of probabilities, the softmax
//! of each row when the loss takes logits, against `true class == c`) over the classes that
//! have both positives and negatives in the epoch. With no such class (or a binary epoch of one
//! kind only) the AUC is 0, as Keras's division-by-zero convention gives.
//!
//! Invariant: the sort is by `f32::total_cmp`, a total order, so the result is deterministic
//! (a NaN score sorts above every number).

use ndarray::ArrayViewD;

use super::{class_count, same_shape, true_classes, Task};
use crate::runtime::loss::{LossError, Targets};

/// The scores and truths seen so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Scores {
    /// Binary: one score per element; multi-class: rows of `classes` probabilities.
    scores: Vec<f32>,
    /// Binary: positive or not per element; multi-class: unused.
    positive: Vec<bool>,
    /// Multi-class: the true class per row.
    classes_of_rows: Vec<usize>,
    /// Multi-class: the row length (0 while nothing is kept, or binary).
    classes: usize,
}

impl Scores {
    /// Keeps one batch's scores. On error nothing is kept.
    pub(super) fn add(
        &mut self,
        task: Task,
        output: &ArrayViewD<f32>,
        targets: &Targets,
    ) -> Result<(), LossError> {
        match task {
            Task::Binary { .. } => {
                let Targets::Dense(target) = targets else {
                    return Err(LossError::TargetKind {
                        loss: "auc",
                        expected: "float 0/1 targets shaped like the output",
                    });
                };
                same_shape(output, target)?;
                self.scores.extend(output.iter().copied());
                self.positive.extend(target.iter().map(|&t| t != 0.0));
            }
            Task::MultiClass { from_logits } => {
                let classes = class_count(output)?;
                if self.classes != 0 && self.classes != classes {
                    return Err(LossError::ShapeMismatch {
                        output: output.shape().to_vec(),
                        target: vec![self.classes],
                    });
                }
                let truth = true_classes(output, targets)?;
                self.classes = classes;
                let values: Vec<f32> = output.iter().copied().collect();
                for row in values.chunks_exact(classes) {
                    if from_logits {
                        self.scores.extend(softmax(row));
                    } else {
                        self.scores.extend_from_slice(row);
                    }
                }
                self.classes_of_rows.extend(truth);
            }
        }
        Ok(())
    }

    /// What is kept, as `(classes, scores, positive, true class per row)`, for a checkpoint.
    pub(super) fn parts(&self) -> (usize, &[f32], &[bool], &[usize]) {
        (
            self.classes,
            &self.scores,
            &self.positive,
            &self.classes_of_rows,
        )
    }

    /// Scores from [`Self::parts`] read back from an untrusted file: refused unless they are
    /// what [`Self::add`] could have kept (one truth per binary score; multi-class rows of
    /// `classes` scores, one true class below `classes` per row).
    pub(super) fn from_parts(
        classes: usize,
        scores: Vec<f32>,
        positive: Vec<bool>,
        classes_of_rows: Vec<usize>,
    ) -> Result<Self, String> {
        let fits = if classes == 0 {
            positive.len() == scores.len() && classes_of_rows.is_empty()
        } else {
            positive.is_empty()
                && classes_of_rows.len().checked_mul(classes) == Some(scores.len())
                && classes_of_rows.iter().all(|&c| c < classes)
        };
        if !fits {
            return Err(format!(
                "AUC scores that do not fit together ({} scores, {} truths, {} true classes of {classes})",
                scores.len(),
                positive.len(),
                classes_of_rows.len()
            ));
        }
        Ok(Self {
            scores,
            positive,
            classes_of_rows,
            classes,
        })
    }

    /// The AUC of everything kept; `None` before any entry.
    pub(super) fn auc(&self) -> Option<f64> {
        if self.scores.is_empty() {
            return None;
        }
        if self.classes == 0 {
            let mut pairs: Vec<(f32, bool)> = self
                .scores
                .iter()
                .copied()
                .zip(self.positive.iter().copied())
                .collect();
            return Some(roc_auc(&mut pairs).unwrap_or(0.0));
        }
        let mut sum = 0.0;
        let mut counted = 0usize;
        for c in 0..self.classes {
            let mut pairs: Vec<(f32, bool)> = self
                .scores
                .chunks_exact(self.classes)
                .zip(&self.classes_of_rows)
                .map(|(row, &truth)| (row.get(c).copied().unwrap_or(0.0), truth == c))
                .collect();
            if let Some(a) = roc_auc(&mut pairs) {
                sum += a;
                counted += 1;
            }
        }
        Some(if counted == 0 {
            0.0
        } else {
            sum / counted as f64
        })
    }
}

/// A row's softmax, in f64 then rounded (as the loss computes it).
fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row
        .iter()
        .map(|&v| f64::from(v))
        .fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = row.iter().map(|&v| (f64::from(v) - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

/// The exact ROC AUC of `(score, positive)` pairs (reordered in place); `None` when there are
/// no positives or no negatives.
pub fn roc_auc(pairs: &mut [(f32, bool)]) -> Option<f64> {
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = pairs.iter().filter(|p| p.1).count();
    let negatives = pairs.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // For each run of equal scores: its negatives rank below every positive above the run and
    // tie with the run's positives (each such pair counts one half).
    let mut above = 0.0_f64;
    let mut area = 0.0_f64;
    let mut start = 0;
    while let Some(&(score, _)) = pairs.get(start) {
        let run = pairs
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .take_while(|p| p.0.total_cmp(&score).is_eq())
            .count();
        let group = pairs.get(start..start + run).unwrap_or(&[]);
        let pos = group.iter().filter(|p| p.1).count() as f64;
        let neg = run as f64 - pos;
        area += neg * (above + pos / 2.0);
        above += pos;
        start += run;
    }
    Some(area / (positives as f64 * negatives as f64))
}
