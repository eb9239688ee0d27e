//! Metric values against hand counts: accuracies, errors, confusion-matrix metrics, AUC with
//! ties and top-k, each also batched to show the epoch value does not depend on batching.

// exact on purpose: the metrics come from integer counts
#![allow(clippy::float_cmp)]

use super::*;
use crate::runtime::loss::{Loss, SparseLabels};
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

/// The same data fed whole and in batches of `sizes`: both results.
fn whole_and_batched(
    metric: Metric,
    output: &ArrayD<f32>,
    targets: &ArrayD<f32>,
    sizes: &[usize],
) -> (f32, f32) {
    let whole = run(metric, output, &Targets::Dense(targets.view())).unwrap();
    let mut acc = MetricAccumulator::new(metric);
    let mut start = 0;
    for &size in sizes {
        let range = start..start + size;
        let o = output.slice_axis(Axis(0), range.clone().into());
        let t = targets.slice_axis(Axis(0), range.into());
        acc.update(&o.into_dyn(), &Targets::Dense(t.into_dyn()))
            .unwrap();
        start += size;
    }
    (whole, acc.result().unwrap())
}

#[test]
fn binary_precision_recall_f1_by_hand() {
    // predicted (> 0.5): 1 0 1 0 1 0 (0.5 is not > 0.5); true: 1 1 0 0 1 1
    // tp = rows 0, 4; fp = row 2; fn = rows 1, 5; tn = row 3
    let output = array![[0.9_f32], [0.4], [0.6], [0.2], [0.7], [0.5]].into_dyn();
    let target = array![[1.0_f32], [1.0], [0.0], [0.0], [1.0], [1.0]].into_dyn();
    let task = Task::Binary { threshold: 0.5 };
    for (metric, expected) in [
        (Metric::Precision(task), 2.0 / 3.0),
        (Metric::Recall(task), 2.0 / 4.0),
        (Metric::F1(task), 4.0 / 7.0),
    ] {
        let (whole, batched) = whole_and_batched(metric, &output, &target, &[4, 2]);
        assert!((f64::from(whole) - expected).abs() < 1e-7, "{metric:?}");
        assert_eq!(whole, batched, "{metric:?}");
    }
    let m =
        ConfusionMatrix::of_batch(task, &output.view(), &Targets::Dense(target.view())).unwrap();
    assert_eq!(
        (m.get(1, 1), m.get(0, 1), m.get(1, 0), m.get(0, 0)),
        (2, 1, 2, 1)
    );
    // no predicted positive: precision 0 (Keras's divide-no-nan), recall 0
    let none = array![[0.1_f32], [0.2]].into_dyn();
    let ones = array![[1.0_f32], [1.0]].into_dyn();
    assert_eq!(
        run(Metric::Precision(task), &none, &Targets::Dense(ones.view())),
        Some(0.0)
    );
    assert_eq!(
        run(Metric::F1(task), &none, &Targets::Dense(ones.view())),
        Some(0.0)
    );
}

/// Rows whose argmax is `predicted[i]`, over three classes.
fn predicting(predicted: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[predicted.len(), 3]), |i| {
        if predicted[i[0]] == i[1] {
            0.8
        } else {
            0.1
        }
    })
}

#[test]
fn macro_precision_recall_f1_by_hand() {
    // true → predicted: 0→0, 0→1, 1→1, 1→2, 2→2, 2→1, 2→2
    // confusion rows (true) × cols (predicted): [1 1 0] [0 1 1] [0 1 2]
    // precision per class: 1/1, 1/3, 2/3 → macro 2/3
    // recall per class: 1/2, 1/2, 2/3 → macro 5/9
    // f1 per class 2tp/(2tp+fp+fn): 2/3, 2/5, 4/6 → macro 26/45
    let output = predicting(&[0, 1, 1, 2, 2, 1, 2]);
    let labels = array![0_i64, 0, 1, 1, 2, 2, 2].into_dyn();
    let onehot = ArrayD::from_shape_fn(IxDyn(&[7, 3]), |i| {
        f32::from(u8::from(labels[[i[0]]] as usize == i[1]))
    });
    let task = Task::MultiClass { from_logits: false };
    for (metric, expected) in [
        (Metric::Precision(task), 2.0 / 3.0),
        (Metric::Recall(task), 5.0 / 9.0),
        (Metric::F1(task), 26.0 / 45.0),
    ] {
        let sparse = Targets::Sparse(SparseLabels::I64(labels.view()));
        let value = run(metric, &output, &sparse).unwrap();
        assert!((f64::from(value) - expected).abs() < 1e-7, "{metric:?}");
        let (whole, batched) = whole_and_batched(metric, &output, &onehot, &[2, 2, 3]);
        assert_eq!(whole, value, "one-hot targets give the same {metric:?}");
        assert_eq!(whole, batched, "{metric:?}");
    }
    let sparse = Targets::Sparse(SparseLabels::I64(labels.view()));
    let m = ConfusionMatrix::of_batch(task, &output.view(), &sparse).unwrap();
    let rows: Vec<Vec<u64>> = (0..3)
        .map(|t| (0..3).map(|p| m.get(t, p)).collect())
        .collect();
    assert_eq!(rows, vec![vec![1, 1, 0], vec![0, 1, 1], vec![0, 1, 2]]);
    let s = m.class_scores(1);
    assert_eq!(
        (s.precision, s.recall, s.f1, s.support),
        (1.0 / 3.0, 0.5, 0.4, 2)
    );
    assert!((m.accuracy() - 4.0 / 7.0).abs() < 1e-12);
    // a class never seen nor predicted counts 0 in the macro average (4 classes now)
    let wide = ArrayD::from_shape_fn(IxDyn(&[7, 4]), |i| {
        output.get([i[0], i[1]]).copied().unwrap_or(0.0)
    });
    let sparse = Targets::Sparse(SparseLabels::I64(labels.view()));
    let p = run(Metric::Precision(task), &wide, &sparse).unwrap();
    assert!((f64::from(p) - 2.0 / 4.0).abs() < 1e-7);
}

#[test]
fn auc_with_ties_by_hand() {
    // (score, positive): (.9 P) (.8 N) (.8 P) (.5 N) (.3 P) (.3 N) (.1 N); P = 3, N = 4
    // pairs won by each positive: .9 → 4; .8 → 3 + tie ½; .3 → 1 + tie ½; total 9 of 12
    let scores = [0.9_f32, 0.8, 0.8, 0.5, 0.3, 0.3, 0.1];
    let truth = [1.0_f32, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0];
    let output = ArrayD::from_shape_vec(IxDyn(&[7, 1]), scores.to_vec()).unwrap();
    let target = ArrayD::from_shape_vec(IxDyn(&[7, 1]), truth.to_vec()).unwrap();
    let auc = Metric::Auc(Task::Binary { threshold: 0.5 });
    let (whole, batched) = whole_and_batched(auc, &output, &target, &[3, 1, 3]);
    assert_eq!(whole, 0.75);
    assert_eq!(batched, 0.75);
    let mut pairs: Vec<(f32, bool)> = scores
        .iter()
        .zip(truth)
        .map(|(&s, t)| (s, t > 0.5))
        .collect();
    assert_eq!(roc_auc(&mut pairs), Some(0.75));
    // all scores tied: ½; perfectly separated: 1; reversed: 0; one kind only: undefined
    assert_eq!(roc_auc(&mut [(0.5, true), (0.5, false)]), Some(0.5));
    assert_eq!(roc_auc(&mut [(0.1, false), (0.7, true)]), Some(1.0));
    assert_eq!(roc_auc(&mut [(0.1, true), (0.7, false)]), Some(0.0));
    assert_eq!(roc_auc(&mut [(0.1, true), (0.7, true)]), None);
    let positives = array![[0.3_f32], [0.9]].into_dyn();
    let ones = array![[1.0_f32], [1.0]].into_dyn();
    assert_eq!(
        run(auc, &positives, &Targets::Dense(ones.view())),
        Some(0.0)
    );
}

#[test]
fn macro_one_vs_rest_auc_by_hand() {
    // class 0: P .7 vs N .3 .2 .5 → 1; class 1: P .4 .2 vs N .2 .2 → (2 + 1)/4 = .75;
    // class 2: P .6 vs N .1 .3 .3 → 1; class 3: no positive, skipped → (1 + .75 + 1)/3
    let probabilities = array![
        [0.7_f32, 0.2, 0.1, 0.0],
        [0.3, 0.4, 0.3, 0.0],
        [0.2, 0.2, 0.6, 0.0],
        [0.5, 0.2, 0.3, 0.0]
    ]
    .into_dyn();
    let labels = array![0_i32, 1, 2, 1].into_dyn();
    let expected = 2.75 / 3.0;
    let sparse = Targets::Sparse(SparseLabels::I32(labels.view()));
    let task = Task::MultiClass { from_logits: false };
    let auc = run(Metric::Auc(task), &probabilities, &sparse).unwrap();
    assert!((f64::from(auc) - expected).abs() < 1e-7);
}

#[test]
fn multi_class_auc_takes_the_softmax_of_logits() {
    // probabilities with no ties within a column:
    // class 0: P .7 vs N .3 .15 .5 → 1; class 1: P .4 .15 vs N .2 .25 → 2/4;
    // class 2: P .6 vs N .1 .3 .35 → 1; macro 2.5/3
    let probabilities = array![
        [0.7_f64, 0.2, 0.1],
        [0.3, 0.4, 0.3],
        [0.15, 0.25, 0.6],
        [0.5, 0.15, 0.35]
    ];
    let labels = array![0_i32, 1, 2, 1].into_dyn();
    let sparse = Targets::Sparse(SparseLabels::I32(labels.view()));
    // logits: ln p plus a different constant per row (the softmax is unchanged)
    let logits = ArrayD::from_shape_fn(IxDyn(&[4, 3]), |i| {
        (probabilities[[i[0], i[1]]].ln() + 2.0 * i[0] as f64) as f32
    });
    let from_logits = Metric::Auc(Task::MultiClass { from_logits: true });
    let value = run(from_logits, &logits, &sparse).unwrap();
    assert!((f64::from(value) - 2.5 / 3.0).abs() < 1e-6, "{value}");
    // ranking the raw logits instead would differ (the row shifts reorder the columns)
    let raw = Metric::Auc(Task::MultiClass { from_logits: false });
    assert_ne!(run(raw, &logits, &sparse), Some(value));
}

#[test]
fn top_k_accuracy_by_hand() {
    let output = array![
        [0.1_f32, 0.5, 0.3, 0.1],    // label 2: one class above → hit for k = 2
        [0.4, 0.3, 0.2, 0.1],        // label 2: two above → miss
        [0.25, 0.25, 0.25, 0.25],    // label 3: all tied, none above → hit (k = 1 too)
        [0.1, 0.2, 0.3, 0.4],        // label 3: the best → hit (k = 1 too)
        [0.5, 0.2, 0.2, 0.1],        // label 1: tied with class 2 at the boundary → hit
        [f32::NAN, 0.9, 0.05, 0.05]  // label 0: a NaN score never hits
    ]
    .into_dyn();
    let labels = array![2_u32, 2, 3, 3, 1, 0].into_dyn();
    let sparse = Targets::Sparse(SparseLabels::U32(labels.view()));
    let top2 = Metric::TopKAccuracy { k: 2 };
    assert_eq!(run(top2, &output, &sparse), Some((4.0_f64 / 6.0) as f32));
    let top1 = Metric::TopKAccuracy { k: 1 };
    assert_eq!(run(top1, &output, &sparse), Some((2.0_f64 / 6.0) as f32));
    let onehot = ArrayD::from_shape_fn(IxDyn(&[6, 4]), |i| {
        f32::from(u8::from(labels[[i[0]]] as usize == i[1]))
    });
    let (whole, batched) = whole_and_batched(top2, &output, &onehot, &[1, 5]);
    assert_eq!(
        (whole, batched),
        ((4.0_f64 / 6.0) as f32, (4.0_f64 / 6.0) as f32)
    );
    assert_eq!(Metric::TopKAccuracy { k: 4 }.name(), "top_k_accuracy");
}

#[test]
fn classification_metrics_follow_the_loss() {
    assert_eq!(
        Task::of(Loss::BinaryCrossentropy { from_logits: true }),
        Some(Task::Binary { threshold: 0.0 })
    );
    assert_eq!(
        Task::of(Loss::SparseCategoricalCrossentropy { from_logits: false }),
        Some(Task::MultiClass { from_logits: false })
    );
    assert_eq!(Task::of(Loss::MeanSquaredError), None);
    // a logits threshold of 0 predicts positive exactly where the sigmoid exceeds 0.5
    let logits = array![[0.3_f32], [-0.2], [0.0]].into_dyn();
    let t = array![[1.0_f32], [1.0], [0.0]].into_dyn();
    let recall = Metric::Recall(Task::Binary { threshold: 0.0 });
    assert_eq!(run(recall, &logits, &Targets::Dense(t.view())), Some(0.5));
}
