//! Losses: the mean loss over a batch and its gradient with respect to the model output.
//!
//! Input: the model output (`[batch, ..., classes]` for the cross-entropies, any shape for the
//! others) and the targets: floats of the same shape, or integer class labels of the output's
//! shape without its last axis (a trailing axis of 1 is accepted too, as Keras does). Output: a
//! [`LossOutput`], the loss reduced like Keras `sum_over_batch_size` (the mean of the per-entry
//! losses, an entry being one element for mse/mae/binary and one row of the last axis for the
//! categorical ones), and the gradient of that mean, shaped like the output.
//!
//! Definitions (Keras 3; `eps = 1e-7`, `n` the entry count):
//! - mse `mean((y - t)²)`, gradient `2(y - t)/n`; mae `mean(|y - t|)`, gradient `sign(y - t)/n`
//!   (0 where equal); Huber `½d²` within `delta`, `delta(|d| - ½delta)` outside, gradient `d`
//!   clipped to `±delta`; log-cosh `ln cosh d`, gradient `tanh d` (`d = y - t`).
//! - binary cross-entropy from probabilities: `p' = clip(p, eps, 1 - eps)`,
//!   `-(t ln p' + (1 - t) ln(1 - p'))`; the gradient is 0 where the clip is active (as TF's
//!   `clip_by_value`). From logits: `max(x, 0) - x t + ln(1 + e^-|x|)`, gradient
//!   `(sigmoid(x) - t)/n`.
//! - categorical cross-entropy from probabilities: rows normalized to sum 1, then clipped,
//!   `-Σ t ln q'`, differentiated through both. From logits: `Σ t (logsumexp(x) - x)`, gradient
//!   `(Σt · softmax(x) - t)/n`.
//! - sparse categorical cross-entropy from probabilities: as Keras, `ln` of the clipped
//!   probabilities is fed to a softmax cross-entropy, i.e. `ln Σ p' - ln p'_y`; from logits
//!   `logsumexp(x) - x_y`, gradient `(softmax(x) - onehot(y))/n`.
//! - [`softmax_cross_entropy`]: the fused softmax + cross-entropy for a model ending in softmax:
//!   takes logits, returns the softmax probabilities as well.
//! - [`weighted_by_sample`]: any of these with one weight per sample (`class_weight`),
//!   `Σ w_i l_i / n` as Keras's `sum_over_batch_size`.
//!
//! Invariants: sums are accumulated in f64 in a fixed order (logical element order, or for
//! contiguous element-wise losses eight interleaved partial sums combined by a fixed tree),
//! so they are deterministic; results
//! are f32; a label outside `[0, classes)` is an error naming its row, never a panic. A NaN in
//! the output gives a NaN loss (find it with `clip::first_non_finite`), never an error.

mod categorical;
mod elementwise;
#[cfg(test)]
mod tests;
mod weighted;

use ndarray::{ArrayD, ArrayViewD};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub(crate) use categorical::class_labels;
pub use categorical::{
    categorical_crossentropy, softmax_cross_entropy, sparse_categorical_crossentropy,
    SoftmaxCrossEntropy,
};
pub use elementwise::{
    binary_crossentropy, huber, log_cosh, mean_absolute_error, mean_squared_error,
};
pub use weighted::weighted_by_sample;

/// The clipping margin of the probability forms (Keras `backend.epsilon()`).
pub const EPSILON: f64 = 1e-7;

/// A loss value and its gradient with respect to the model output.
#[derive(Debug, Clone, PartialEq)]
pub struct LossOutput {
    /// The mean loss over the batch.
    pub loss: f32,
    /// `d loss / d output`, the output's shape.
    pub grad: ArrayD<f32>,
}

/// Why a loss could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LossError {
    /// Targets and output have different shapes.
    #[error("targets of shape {target:?} do not match the output of shape {output:?}")]
    ShapeMismatch {
        /// The output's shape.
        output: Vec<usize>,
        /// The targets' shape.
        target: Vec<usize>,
    },
    /// Integer labels whose shape is not the output's without its class axis.
    #[error("labels of shape {labels:?} do not fit the output of shape {output:?} (expected the output's shape without its last axis)")]
    LabelShape {
        /// The output's shape.
        output: Vec<usize>,
        /// The labels' shape.
        labels: Vec<usize>,
    },
    /// The output has no class axis (rank 0) or a class axis of length 0.
    #[error("the output of shape {output:?} has no class axis to take a cross-entropy over")]
    NoClasses {
        /// The output's shape.
        output: Vec<usize>,
    },
    /// Nothing to average over.
    #[error("the batch is empty (output shape {output:?})")]
    EmptyBatch {
        /// The output's shape.
        output: Vec<usize>,
    },
    /// An integer label outside `[0, classes)`.
    #[error("label {label} in row {row} is outside the class range 0..{classes}")]
    LabelOutOfRange {
        /// Row (flat index over the leading axes) of the label.
        row: usize,
        /// The label found.
        label: i64,
        /// Number of classes.
        classes: usize,
    },
    /// The loss was given targets of the wrong kind (float vs integer labels).
    #[error("{loss} expects {expected}")]
    TargetKind {
        /// The loss's name.
        loss: &'static str,
        /// What it expects.
        expected: &'static str,
    },
}

/// Integer class labels, in any of the dtypes data sources produce.
#[derive(Debug, Clone)]
pub enum SparseLabels<'a> {
    /// `i32` labels.
    I32(ArrayViewD<'a, i32>),
    /// `i64` labels.
    I64(ArrayViewD<'a, i64>),
    /// `u32` labels.
    U32(ArrayViewD<'a, u32>),
}

impl SparseLabels<'_> {
    /// The labels' shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Self::I32(a) => a.shape(),
            Self::I64(a) => a.shape(),
            Self::U32(a) => a.shape(),
        }
    }

    /// The labels in logical order, widened to i64.
    pub fn to_i64(&self) -> Vec<i64> {
        match self {
            Self::I32(a) => a.iter().map(|&x| i64::from(x)).collect(),
            Self::I64(a) => a.iter().copied().collect(),
            Self::U32(a) => a.iter().map(|&x| i64::from(x)).collect(),
        }
    }
}

/// Targets of a loss: floats shaped like the output, or integer class labels.
#[derive(Debug, Clone)]
pub enum Targets<'a> {
    /// Float targets (regression values, 0/1, one-hot rows).
    Dense(ArrayViewD<'a, f32>),
    /// Integer class labels.
    Sparse(SparseLabels<'a>),
}

/// A loss as named in a `train` block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Loss {
    /// `mse`.
    MeanSquaredError,
    /// `mae`.
    MeanAbsoluteError,
    /// `huber(delta:)`.
    Huber {
        /// Where the loss turns from quadratic to linear.
        delta: f32,
    },
    /// `log_cosh`.
    LogCosh,
    /// `binary_crossentropy`.
    BinaryCrossentropy {
        /// The output is logits, not probabilities.
        from_logits: bool,
    },
    /// `categorical_crossentropy` (one-hot targets).
    CategoricalCrossentropy {
        /// The output is logits, not probabilities.
        from_logits: bool,
    },
    /// `sparse_categorical_crossentropy` (integer labels).
    SparseCategoricalCrossentropy {
        /// The output is logits, not probabilities.
        from_logits: bool,
    },
}

impl Loss {
    /// The loss's name as written in a `train` block.
    pub fn name(self) -> &'static str {
        match self {
            Self::MeanSquaredError => "mse",
            Self::MeanAbsoluteError => "mae",
            Self::Huber { .. } => "huber",
            Self::LogCosh => "log_cosh",
            Self::BinaryCrossentropy { .. } => "binary_crossentropy",
            Self::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Self::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
        }
    }

    /// The loss of `output` against `targets`, and its gradient.
    pub fn evaluate(
        self,
        output: &ArrayViewD<f32>,
        targets: &Targets,
    ) -> Result<LossOutput, LossError> {
        let wrong_kind = |expected| LossError::TargetKind {
            loss: self.name(),
            expected,
        };
        match (self, targets) {
            (Self::SparseCategoricalCrossentropy { from_logits }, Targets::Sparse(labels)) => {
                sparse_categorical_crossentropy(output, labels, from_logits)
            }
            (Self::SparseCategoricalCrossentropy { .. }, Targets::Dense(_)) => {
                Err(wrong_kind("integer class labels"))
            }
            (_, Targets::Sparse(_)) => Err(wrong_kind("float targets shaped like the output")),
            (Self::MeanSquaredError, Targets::Dense(t)) => mean_squared_error(output, t),
            (Self::MeanAbsoluteError, Targets::Dense(t)) => mean_absolute_error(output, t),
            (Self::Huber { delta }, Targets::Dense(t)) => huber(output, t, delta),
            (Self::LogCosh, Targets::Dense(t)) => log_cosh(output, t),
            (Self::BinaryCrossentropy { from_logits }, Targets::Dense(t)) => {
                binary_crossentropy(output, t, from_logits)
            }
            (Self::CategoricalCrossentropy { from_logits }, Targets::Dense(t)) => {
                categorical_crossentropy(output, t, from_logits)
            }
        }
    }
}

/// Checks targets have the output's shape and the batch is not empty; returns the entry count.
fn check_same_shape(
    output: &ArrayViewD<f32>,
    target: &ArrayViewD<f32>,
) -> Result<usize, LossError> {
    if output.shape() != target.shape() {
        return Err(LossError::ShapeMismatch {
            output: output.shape().to_vec(),
            target: target.shape().to_vec(),
        });
    }
    if output.is_empty() {
        return Err(LossError::EmptyBatch {
            output: output.shape().to_vec(),
        });
    }
    Ok(output.len())
}
