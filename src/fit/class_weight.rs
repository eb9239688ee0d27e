//! `class_weight`: the weight of each class, and of each sample of a training batch.
//!
//! Input: the checked [`ClassWeight`] and the training split's labels (for `balanced`); per
//! batch, its targets before label smoothing. Output: one weight per class, then one weight
//! per sample for [`crate::runtime::train::Trainer::train_step_weighted`]. Only training
//! batches are weighted: the validation loss and `modelc eval` are unweighted, as in Keras.
//!
//! A sample's class (as Keras reads it): its integer label; for one-hot rows the argmax; for
//! a binary output's one target, 1 when it is at least 0.5, else 0. `balanced` is
//! scikit-learn's: `n_samples / (n_classes * count_c)` with `n_classes` the classes present in
//! the training split; a class absent from it (which no training sample has) weighs 1.

use crate::check::train_types::ClassWeight;
use crate::data::samples::Labels;
use crate::diag::{codes, Diagnostic};
use crate::runtime::loss::Targets;

/// The class of each sample of `[n, c]` float targets (argmax, or `t >= 0.5` when `c == 1`).
fn classes_of_rows(values: &[f32], width: usize) -> Vec<i64> {
    if width <= 1 {
        return values.iter().map(|&t| i64::from(t >= 0.5)).collect();
    }
    values
        .chunks_exact(width)
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row.get(best).copied().unwrap_or(f32::NEG_INFINITY) {
                    best = i;
                }
            }
            best as i64
        })
        .collect()
}

/// The class of every sample of a split's labels.
fn classes_of_labels(labels: &Labels) -> Vec<i64> {
    match labels {
        // `check` refuses class weights for several outputs (E0511).
        Labels::None | Labels::Outputs(_) => Vec::new(),
        Labels::Class(ids) => ids.clone(),
        Labels::Values(v) => {
            let width = v.shape().iter().skip(1).product::<usize>();
            let values: Vec<f32> = v.iter().copied().collect();
            classes_of_rows(&values, width)
        }
    }
}

/// The weight of each class (index = class id).
pub fn per_class(weights: &ClassWeight, train: &Labels) -> Vec<f32> {
    match weights {
        ClassWeight::Given(w) => w.iter().map(|&x| x as f32).collect(),
        ClassWeight::Balanced => {
            let classes = classes_of_labels(train);
            let size = classes
                .iter()
                .filter_map(|&c| usize::try_from(c).ok())
                .max()
                .map_or(0, |m| m + 1);
            let mut counts = vec![0u64; size];
            for &c in &classes {
                if let Some(n) = usize::try_from(c).ok().and_then(|c| counts.get_mut(c)) {
                    *n += 1;
                }
            }
            let present = counts.iter().filter(|&&n| n > 0).count() as f64;
            let samples = counts.iter().sum::<u64>() as f64;
            counts
                .iter()
                .map(|&n| {
                    if n == 0 {
                        1.0
                    } else {
                        (samples / (present * n as f64)) as f32
                    }
                })
                .collect()
        }
    }
}

/// One weight per sample of a batch, from its (unsmoothed) targets.
pub fn per_sample(class_weights: &[f32], truth: &Targets) -> Result<Vec<f32>, Diagnostic> {
    let classes = match truth {
        Targets::Sparse(labels) => labels.to_i64(),
        Targets::Dense(t) => {
            let width = t.shape().iter().skip(1).product::<usize>();
            let values: Vec<f32> = t.iter().copied().collect();
            classes_of_rows(&values, width)
        }
    };
    classes
        .iter()
        .map(|&c| {
            usize::try_from(c)
                .ok()
                .and_then(|i| class_weights.get(i).copied())
                .ok_or_else(|| {
                    Diagnostic::error(
                        codes::TRAIN_FAILED,
                        format!(
                            "a sample of class {c} has no weight: `class_weight` covers classes 0..{}",
                            class_weights.len()
                        ),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::loss::SparseLabels;
    use ndarray::array;

    #[test]
    fn balanced_weights_by_hand() {
        // 6 samples: class 0 ×3, class 1 ×1, class 3 ×2 (class 2 absent): 3 classes present
        // weight_c = 6 / (3 * count_c): 2/3, 2, (absent) 1, 1
        let labels = Labels::Class(vec![0, 1, 0, 3, 0, 3]);
        let w = per_class(&ClassWeight::Balanced, &labels);
        let expected = [2.0_f32 / 3.0, 2.0, 1.0, 1.0];
        assert_eq!(w.len(), 4);
        for (a, b) in w.iter().zip(expected) {
            assert!((a - b).abs() < 1e-7, "{w:?}");
        }
        // one-hot rows and binary targets are read by argmax and by `t >= 0.5`
        let onehot = Labels::Values(array![[0.0_f32, 1.0], [1.0, 0.0], [0.0, 1.0]].into_dyn());
        assert_eq!(per_class(&ClassWeight::Balanced, &onehot), vec![1.5, 0.75]);
        let binary = Labels::Values(array![[1.0_f32], [0.0], [0.0], [0.0]].into_dyn());
        assert_eq!(
            per_class(&ClassWeight::Balanced, &binary),
            vec![2.0 / 3.0, 2.0]
        );
    }

    #[test]
    fn sample_weights_follow_the_class() {
        let w = [1.0_f32, 3.0, 0.5];
        let labels = array![2_i64, 0, 1].into_dyn();
        let sparse = Targets::Sparse(SparseLabels::I64(labels.view()));
        assert_eq!(per_sample(&w, &sparse).unwrap(), vec![0.5, 1.0, 3.0]);
        let binary = array![[1.0_f32], [0.0], [0.7]].into_dyn();
        let dense = Targets::Dense(binary.view());
        assert_eq!(per_sample(&w, &dense).unwrap(), vec![3.0, 1.0, 3.0]);
        let out = array![5_i64].into_dyn();
        let bad = Targets::Sparse(SparseLabels::I64(out.view()));
        assert!(per_sample(&w, &bad).is_err());
    }
}
