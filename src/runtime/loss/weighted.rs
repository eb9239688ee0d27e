//! Sample weights (what `class_weight` becomes): each sample's loss times its weight, reduced
//! like Keras `sum_over_batch_size`.
//!
//! Input: the output `[n, ...]`, the targets, one weight per sample (per index of the first
//! axis), and the unweighted loss to apply. Output: a [`LossOutput`] with loss
//! `Σ_i w_i l_i / n` (`l_i` the loss of sample `i` alone: the mean over its entries) and
//! gradient `w_i ∂l_i/∂y_i / n` in sample `i`'s rows. With every weight 1 this is the
//! unweighted loss (the mean over samples of per-sample means is the mean over entries when
//! each sample has the same number of entries). Samples are summed in order, in f64.

use ndarray::{ArrayD, ArrayViewD, Axis, Slice};

use super::{LossError, LossOutput, SparseLabels, Targets};

/// Rows `i..=i` of a view, borrowing what the view borrows.
fn row<'a, T>(a: &ArrayViewD<'a, T>, i: usize) -> ArrayViewD<'a, T> {
    let mut v = a.clone();
    v.slice_axis_inplace(Axis(0), Slice::from(i..=i));
    v
}

/// Sample `i` of the targets.
fn sample<'a>(targets: &Targets<'a>, i: usize) -> Targets<'a> {
    match targets {
        Targets::Dense(t) => Targets::Dense(row(t, i)),
        Targets::Sparse(labels) => Targets::Sparse(match labels {
            SparseLabels::I32(a) => SparseLabels::I32(row(a, i)),
            SparseLabels::I64(a) => SparseLabels::I64(row(a, i)),
            SparseLabels::U32(a) => SparseLabels::U32(row(a, i)),
        }),
    }
}

/// The weighted loss of `loss` (the unweighted loss of one sample: its value and gradient).
pub fn weighted_by_sample(
    output: &ArrayViewD<f32>,
    targets: &Targets,
    weights: &[f32],
    loss: impl Fn(&ArrayViewD<f32>, &Targets) -> Result<LossOutput, LossError>,
) -> Result<LossOutput, LossError> {
    let n = output.shape().first().copied().unwrap_or(0);
    if n == 0 {
        return Err(LossError::EmptyBatch {
            output: output.shape().to_vec(),
        });
    }
    if weights.len() != n {
        return Err(LossError::ShapeMismatch {
            output: output.shape().to_vec(),
            target: vec![weights.len()],
        });
    }
    let mut grad = ArrayD::<f32>::zeros(output.raw_dim());
    let mut total = 0.0_f64;
    let scale = 1.0 / n as f64;
    for (i, &w) in weights.iter().enumerate() {
        let one = output.slice_axis(Axis(0), Slice::from(i..=i));
        let r = loss(&one, &sample(targets, i))?;
        total += f64::from(w) * f64::from(r.loss);
        let factor = f64::from(w) * scale;
        let mut rows = grad.slice_axis_mut(Axis(0), Slice::from(i..=i));
        rows.zip_mut_with(&r.grad, |g, &d| *g = (f64::from(d) * factor) as f32);
    }
    Ok(LossOutput {
        loss: (total * scale) as f32,
        grad,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::loss::{softmax_cross_entropy, Loss};
    use ndarray::{array, ArrayD};

    fn sparse_ce(y: &ArrayViewD<f32>, t: &Targets) -> Result<LossOutput, LossError> {
        Loss::SparseCategoricalCrossentropy { from_logits: false }.evaluate(y, t)
    }

    #[test]
    fn weighted_loss_and_gradient_by_hand() {
        // rows sum to 1, so each sample's loss is -ln p[label]; labels 0 and 1, weights 1 and 3
        let p = array![[0.8_f32, 0.2], [0.4, 0.6]].into_dyn();
        let labels = array![0_i64, 1].into_dyn();
        let t = Targets::Sparse(SparseLabels::I64(labels.view()));
        let r = weighted_by_sample(&p.view(), &t, &[1.0, 3.0], sparse_ce).unwrap();
        let expected = (-(0.8_f64.ln()) - 3.0 * 0.6_f64.ln()) / 2.0;
        assert!((f64::from(r.loss) - expected).abs() < 1e-6, "{}", r.loss);
        // d(-ln p_y)/dp through the row normalization: -1/p_y + 1 at y, 1 elsewhere (Σp = 1),
        // times w_i / n
        let (at_label_0, at_label_1) = (1.0 - 1.0 / 0.8, 1.0 - 1.0 / 0.6);
        let grad = [
            [at_label_0 / 2.0, 1.0 / 2.0],
            [3.0 / 2.0, 3.0 * at_label_1 / 2.0],
        ];
        for (i, row) in grad.iter().enumerate() {
            for (j, &g) in row.iter().enumerate() {
                assert!((f64::from(r.grad[[i, j]]) - g).abs() < 1e-5, "[{i}, {j}]");
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let logits = array![[0.3_f32, -1.2, 0.5], [1.1, 0.2, -0.4], [-0.7, 0.9, 0.1]].into_dyn();
        let labels = array![2_i32, 0, 1].into_dyn();
        let t = Targets::Sparse(SparseLabels::I32(labels.view()));
        let w = [0.5_f32, 2.0, 1.5];
        let fused = |y: &ArrayViewD<f32>, t: &Targets| {
            softmax_cross_entropy(y, t).map(|r| LossOutput {
                loss: r.loss,
                grad: r.grad,
            })
        };
        let r = weighted_by_sample(&logits.view(), &t, &w, fused).unwrap();
        let eps = 1e-2_f32;
        for index in 0..logits.len() {
            let at = |d: f32| {
                let mut y: ArrayD<f32> = logits.clone();
                if let Some(v) = y.iter_mut().nth(index) {
                    *v += d;
                }
                f64::from(weighted_by_sample(&y.view(), &t, &w, fused).unwrap().loss)
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * f64::from(eps));
            let analytic = f64::from(r.grad.iter().nth(index).copied().unwrap());
            assert!(
                (numeric - analytic).abs() < 2e-3,
                "{index}: {numeric} vs {analytic}"
            );
        }
    }

    #[test]
    fn unit_weights_are_the_unweighted_loss_and_weights_scale_each_sample() {
        let p = array![[0.9_f32], [0.2], [0.6], [0.4]].into_dyn();
        let t = array![[1.0_f32], [0.0], [0.0], [1.0]].into_dyn();
        let bce = |y: &ArrayViewD<f32>, t: &Targets| {
            Loss::BinaryCrossentropy { from_logits: false }.evaluate(y, t)
        };
        let targets = Targets::Dense(t.view());
        let plain = bce(&p.view(), &targets).unwrap();
        let ones = weighted_by_sample(&p.view(), &targets, &[1.0; 4], bce).unwrap();
        assert!((plain.loss - ones.loss).abs() < 1e-6);
        for (a, b) in plain.grad.iter().zip(ones.grad.iter()) {
            assert!((a - b).abs() < 1e-7);
        }
        let w = [2.0_f32, 0.0, 1.0, 3.0];
        let weighted = weighted_by_sample(&p.view(), &targets, &w, bce).unwrap();
        for (i, &wi) in w.iter().enumerate() {
            let g = weighted.grad[[i, 0]];
            assert!((g - wi * plain.grad[[i, 0]]).abs() < 1e-6, "sample {i}");
        }
        assert!(weighted_by_sample(&p.view(), &targets, &[1.0; 3], bce).is_err());
    }
}
