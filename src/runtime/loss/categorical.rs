//! The cross-entropies over a class axis (the last one): categorical (one-hot or any
//! distribution as targets), sparse categorical (integer labels) and the fused softmax +
//! cross-entropy. Each row of the last axis is one entry; the loss is the mean over rows.

use ndarray::{ArrayD, ArrayViewD};

use super::{check_same_shape, LossError, LossOutput, SparseLabels, Targets, EPSILON};

/// The fused softmax + cross-entropy: loss, gradient w.r.t. the logits, and the probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftmaxCrossEntropy {
    /// The mean cross-entropy over rows.
    pub loss: f32,
    /// `(Σt · softmax - t) / rows`, the logits' shape.
    pub grad: ArrayD<f32>,
    /// `softmax(logits)` along the last axis (what the model's softmax layer would output).
    pub probabilities: ArrayD<f32>,
}

/// The target of one row.
#[derive(Clone, Copy)]
enum RowTarget<'a> {
    Dense(&'a [f32]),
    Class(usize),
}

/// Targets of all rows, in row order.
enum RowTargets {
    Dense(Vec<f32>),
    Classes(Vec<usize>),
}

impl RowTargets {
    fn row(&self, index: usize, classes: usize) -> RowTarget<'_> {
        match self {
            Self::Dense(values) => {
                let start = index * classes;
                RowTarget::Dense(values.get(start..start + classes).unwrap_or(&[]))
            }
            Self::Classes(labels) => RowTarget::Class(labels.get(index).copied().unwrap_or(0)),
        }
    }
}

/// The output's values in logical order with its row count and class count.
fn class_rows(output: &ArrayViewD<f32>) -> Result<(Vec<f32>, usize, usize), LossError> {
    let classes = match output.shape().last() {
        Some(&c) if c > 0 => c,
        _ => {
            return Err(LossError::NoClasses {
                output: output.shape().to_vec(),
            })
        }
    };
    let rows = output.len() / classes;
    if rows == 0 {
        return Err(LossError::EmptyBatch {
            output: output.shape().to_vec(),
        });
    }
    Ok((output.iter().copied().collect(), rows, classes))
}

/// Validates integer labels against the output: shape (leading axes, optionally with a
/// trailing 1) and range. Returns one class index per row.
pub(crate) fn class_labels(
    output: &ArrayViewD<f32>,
    labels: &SparseLabels,
    classes: usize,
) -> Result<Vec<usize>, LossError> {
    let leading = output
        .shape()
        .split_last()
        .map_or(&[][..], |(_, rest)| rest);
    let shape = labels.shape();
    let fits = shape == leading || shape.split_last() == Some((&1, leading));
    if !fits {
        return Err(LossError::LabelShape {
            output: output.shape().to_vec(),
            labels: shape.to_vec(),
        });
    }
    labels
        .to_i64()
        .into_iter()
        .enumerate()
        .map(|(row, label)| {
            usize::try_from(label)
                .ok()
                .filter(|&class| class < classes)
                .ok_or(LossError::LabelOutOfRange {
                    row,
                    label,
                    classes,
                })
        })
        .collect()
}

/// Runs `kernel(row values, row target, row gradient, row probabilities)` on every row; it
/// returns the row's loss and writes the gradient already divided by the row count.
fn over_rows(
    output: &ArrayViewD<f32>,
    values: &[f32],
    rows: usize,
    classes: usize,
    targets: &RowTargets,
    kernel: impl Fn(&[f32], RowTarget, &mut [f32], &mut [f32], f64) -> f64,
) -> (f32, ArrayD<f32>, ArrayD<f32>) {
    let scale = 1.0 / rows as f64;
    let mut grad = vec![0.0_f32; values.len()];
    let mut probabilities = vec![0.0_f32; values.len()];
    let mut total = 0.0_f64;
    for (index, ((x, g), p)) in values
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes))
        .zip(probabilities.chunks_exact_mut(classes))
        .enumerate()
    {
        total += kernel(x, targets.row(index, classes), g, p, scale);
    }
    let shaped = |flat: Vec<f32>| {
        let mut array = ArrayD::zeros(output.raw_dim());
        array.iter_mut().zip(flat).for_each(|(a, v)| *a = v);
        array
    };
    ((total * scale) as f32, shaped(grad), shaped(probabilities))
}

/// Softmax cross-entropy of one row of logits; writes `softmax` into `p`.
fn logits_row(x: &[f32], target: RowTarget, g: &mut [f32], p: &mut [f32], scale: f64) -> f64 {
    let max = x
        .iter()
        .map(|&v| f64::from(v))
        .fold(f64::NEG_INFINITY, f64::max);
    let sum_exp: f64 = x.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    let log_sum_exp = max + sum_exp.ln();
    for (p, &v) in p.iter_mut().zip(x) {
        *p = ((f64::from(v) - max).exp() / sum_exp) as f32;
    }
    let softmax = |k: usize| p.get(k).map_or(0.0, |&v| f64::from(v));
    match target {
        RowTarget::Dense(t) => {
            let mass: f64 = t.iter().map(|&v| f64::from(v)).sum();
            let mut loss = 0.0;
            for (k, ((g, &t), &v)) in g.iter_mut().zip(t).zip(x).enumerate() {
                let t = f64::from(t);
                if t != 0.0 {
                    loss += t * (log_sum_exp - f64::from(v));
                }
                *g = ((mass * softmax(k) - t) * scale) as f32;
            }
            loss
        }
        RowTarget::Class(y) => {
            for (k, g) in g.iter_mut().enumerate() {
                let hit = if k == y { 1.0 } else { 0.0 };
                *g = ((softmax(k) - hit) * scale) as f32;
            }
            log_sum_exp - x.get(y).map_or(f64::NAN, |&v| f64::from(v))
        }
    }
}

/// Whether a probability is strictly inside the clip range, so the clip passes its gradient.
fn unclipped(q: f64) -> bool {
    (EPSILON..=1.0 - EPSILON).contains(&q)
}

/// Keras categorical cross-entropy from probabilities: normalize, clip, `-Σ t ln q'`.
fn probabilities_row(x: &[f32], t: &[f32], g: &mut [f32], scale: f64) -> f64 {
    let sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
    let normalized: Vec<f64> = x.iter().map(|&v| f64::from(v) / sum).collect();
    let mut loss = 0.0;
    // d loss / d q, then through the normalization: dq_j/dp_k = (δ_jk - q_j) / sum.
    let mut d_q = vec![0.0_f64; x.len()];
    for ((d, &q), &t) in d_q.iter_mut().zip(&normalized).zip(t) {
        let t = f64::from(t);
        let clipped = q.clamp(EPSILON, 1.0 - EPSILON);
        if t != 0.0 {
            loss -= t * clipped.ln();
        }
        *d = if unclipped(q) { -t / clipped } else { q * 0.0 };
    }
    let dot: f64 = d_q.iter().zip(&normalized).map(|(d, q)| d * q).sum();
    for (g, d) in g.iter_mut().zip(&d_q) {
        *g = ((d - dot) / sum * scale) as f32;
    }
    loss
}

/// Keras sparse categorical cross-entropy from probabilities: `ln Σ p' - ln p'_y`.
fn sparse_probabilities_row(x: &[f32], y: usize, g: &mut [f32], scale: f64) -> f64 {
    let clipped: Vec<f64> = x
        .iter()
        .map(|&v| f64::from(v).clamp(EPSILON, 1.0 - EPSILON))
        .collect();
    let sum: f64 = clipped.iter().sum();
    for (k, ((g, &c), &v)) in g.iter_mut().zip(&clipped).zip(x).enumerate() {
        let hit = if k == y { 1.0 / c } else { 0.0 };
        let d = if unclipped(f64::from(v)) {
            1.0 / sum - hit
        } else {
            c * 0.0
        };
        *g = (d * scale) as f32;
    }
    sum.ln() - clipped.get(y).map_or(f64::NAN, |c| c.ln())
}

/// Categorical cross-entropy against float targets of the output's shape (one-hot rows).
pub fn categorical_crossentropy(
    output: &ArrayViewD<f32>,
    target: &ArrayViewD<f32>,
    from_logits: bool,
) -> Result<LossOutput, LossError> {
    check_same_shape(output, target)?;
    let (values, rows, classes) = class_rows(output)?;
    let targets = RowTargets::Dense(target.iter().copied().collect());
    let (loss, grad) = crossentropy_rows(output, &values, rows, classes, &targets, from_logits);
    Ok(LossOutput { loss, grad })
}

/// Cross-entropy over class rows, from logits or from probabilities, against one-hot rows or
/// integer labels: the one driver both public losses share.
fn crossentropy_rows(
    output: &ArrayViewD<f32>,
    values: &[f32],
    rows: usize,
    classes: usize,
    targets: &RowTargets,
    from_logits: bool,
) -> (f32, ArrayD<f32>) {
    let (loss, grad, _) = if from_logits {
        over_rows(output, values, rows, classes, targets, logits_row)
    } else {
        over_rows(
            output,
            values,
            rows,
            classes,
            targets,
            |x, t, g, _, s| match t {
                RowTarget::Dense(t) => probabilities_row(x, t, g, s),
                RowTarget::Class(y) => sparse_probabilities_row(x, y, g, s),
            },
        )
    };
    (loss, grad)
}

/// Sparse categorical cross-entropy against integer labels.
pub fn sparse_categorical_crossentropy(
    output: &ArrayViewD<f32>,
    labels: &SparseLabels,
    from_logits: bool,
) -> Result<LossOutput, LossError> {
    let (values, rows, classes) = class_rows(output)?;
    let targets = RowTargets::Classes(class_labels(output, labels, classes)?);
    let (loss, grad) = crossentropy_rows(output, &values, rows, classes, &targets, from_logits);
    Ok(LossOutput { loss, grad })
}

/// Softmax followed by cross-entropy, from logits, against one-hot rows or integer labels.
pub fn softmax_cross_entropy(
    logits: &ArrayViewD<f32>,
    targets: &Targets,
) -> Result<SoftmaxCrossEntropy, LossError> {
    let (values, rows, classes) = class_rows(logits)?;
    let row_targets = match targets {
        Targets::Dense(t) => {
            check_same_shape(logits, t)?;
            RowTargets::Dense(t.iter().copied().collect())
        }
        Targets::Sparse(labels) => RowTargets::Classes(class_labels(logits, labels, classes)?),
    };
    let (loss, grad, probabilities) =
        over_rows(logits, &values, rows, classes, &row_targets, logits_row);
    Ok(SoftmaxCrossEntropy {
        loss,
        grad,
        probabilities,
    })
}
