//! Summary statistics of a loaded data set, for `modelc data stats`.
//!
//! Input: a [`Dataset`]. Output: a serializable [`DataStats`]: counts, shapes, class balance,
//! feature and label mean/std per split (after preprocessing, before augmentation).

use super::loader::Dataset;
use super::samples::{Features, Labels, Samples};
use serde::Serialize;

/// Statistics of one split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SplitStats {
    pub samples: usize,
    /// The per-sample feature shape.
    pub shape: Vec<usize>,
    /// `f32` or `i64`.
    pub dtype: &'static str,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Samples per class id (index = class), for class labels.
    pub class_counts: Option<Vec<usize>>,
    /// Mean and standard deviation of real-valued (or one-hot) labels.
    pub label_mean: Option<f64>,
    pub label_std: Option<f64>,
    /// With a label set per model output, each set's statistics in the outputs' order (the
    /// fields above then describe the first); empty for one label set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label_sets: Vec<LabelStats>,
}

/// Statistics of one label set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelStats {
    /// Samples per class id, for class labels.
    pub class_counts: Option<Vec<usize>>,
    /// Mean and standard deviation of real-valued (or one-hot) labels.
    pub label_mean: Option<f64>,
    pub label_std: Option<f64>,
}

/// Statistics of a whole data set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataStats {
    pub name: String,
    pub train: SplitStats,
    pub validation: SplitStats,
    /// The held-out test split, when the pipeline has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<SplitStats>,
}

/// Mean, population std, min and max (zeros when empty), accumulated in f64.
fn moments(values: impl Iterator<Item = f64>) -> (f64, f64, f64, f64) {
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        n += 1.0;
        sum += v;
        sq += v * v;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if n == 0.0 {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let mean = sum / n;
    (mean, (sq / n - mean * mean).max(0.0).sqrt(), lo, hi)
}

/// Statistics of one set of samples.
pub fn split_stats(s: &Samples) -> SplitStats {
    let (dtype, (mean, std, min, max)) = match &s.features {
        Features::F32(a) => ("f32", moments(a.iter().map(|&v| f64::from(v)))),
        Features::I64(a) => ("i64", moments(a.iter().map(|&v| v as f64))),
        // Every group's values together; the shape below is the first group's.
        Features::Groups(groups) => {
            let mut values: Vec<f64> = Vec::new();
            for g in groups {
                match &g.features {
                    Features::F32(a) => values.extend(a.iter().map(|&v| f64::from(v))),
                    Features::I64(a) => values.extend(a.iter().map(|&v| v as f64)),
                    Features::Groups(_) => {}
                }
            }
            ("f32", moments(values.into_iter()))
        }
    };
    let first = label_stats(s.labels.first());
    let label_sets = match &s.labels {
        Labels::Outputs(sets) => sets.iter().map(label_stats).collect(),
        _ => Vec::new(),
    };
    SplitStats {
        samples: s.features.len(),
        shape: s.features.sample_shape().to_vec(),
        dtype,
        mean,
        std,
        min,
        max,
        class_counts: first.class_counts,
        label_mean: first.label_mean,
        label_std: first.label_std,
        label_sets,
    }
}

/// Class counts of class ids, or the moments of real-valued labels.
fn label_stats(labels: &Labels) -> LabelStats {
    let (class_counts, label_mean, label_std) = match labels {
        Labels::None | Labels::Outputs(_) => (None, None, None),
        Labels::Class(ids) => {
            let classes = ids.iter().copied().max().map_or(0, |m| m.max(-1) + 1) as usize;
            let mut counts = vec![0usize; classes];
            for &id in ids {
                if let Some(c) = usize::try_from(id).ok().and_then(|i| counts.get_mut(i)) {
                    *c += 1;
                }
            }
            (Some(counts), None, None)
        }
        Labels::Values(v) => {
            let (m, sd, _, _) = moments(v.iter().map(|&x| f64::from(x)));
            (None, Some(m), Some(sd))
        }
    };
    LabelStats {
        class_counts,
        label_mean,
        label_std,
    }
}

/// Statistics of every split of a data set.
pub fn stats(ds: &Dataset) -> DataStats {
    DataStats {
        name: ds.spec.name.clone(),
        train: split_stats(&ds.train),
        validation: split_stats(&ds.validation),
        test: (!ds.test.features.is_empty()).then(|| split_stats(&ds.test)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::float_cmp)] // exact small values
    use super::*;
    use ndarray::ArrayD;

    #[test]
    fn stats_count_classes_and_moments_by_hand() {
        let s = Samples {
            features: Features::F32(
                ArrayD::from_shape_vec(vec![4, 1], vec![1.0, 2.0, 3.0, 6.0]).unwrap(),
            ),
            labels: Labels::Class(vec![0, 2, 2, 0]),
        };
        let st = split_stats(&s);
        assert_eq!(st.samples, 4);
        assert_eq!(st.shape, vec![1]);
        assert_eq!(st.mean, 3.0);
        assert!((st.std - 1.870_828_693_386_970_7).abs() < 1e-12); // sqrt(14/4)
        assert_eq!((st.min, st.max), (1.0, 6.0));
        assert_eq!(st.class_counts, Some(vec![2, 0, 2]));
        let json = serde_json::to_string(&st).unwrap();
        assert!(json.contains("\"class_counts\":[2,0,2]"), "{json}");
        assert!(!json.contains("label_sets"), "{json}");
    }

    #[test]
    fn stats_of_each_output_label_set() {
        let s = Samples {
            features: Features::F32(ArrayD::from_shape_vec(vec![3, 1], vec![0.0; 3]).unwrap()),
            labels: Labels::Outputs(vec![
                Labels::Class(vec![1, 1, 0]),
                Labels::Values(ArrayD::from_shape_vec(vec![3, 1], vec![1.0, 2.0, 6.0]).unwrap()),
            ]),
        };
        let st = split_stats(&s);
        assert_eq!(st.class_counts, Some(vec![1, 2]));
        assert_eq!(st.label_sets.len(), 2);
        assert_eq!(st.label_sets[0].class_counts, Some(vec![1, 2]));
        assert_eq!(st.label_sets[1].class_counts, None);
        assert_eq!(st.label_sets[1].label_mean, Some(3.0));
        // sqrt(((1-3)² + (2-3)² + (6-3)²) / 3) = sqrt(14/3)
        let sd = st.label_sets[1].label_std.unwrap();
        assert!((sd - (14.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }
}
