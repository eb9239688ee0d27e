//! Whole pipelines: the shipped digits, batching, shuffling, splitting.

use super::*;
use crate::data::spec::{
    Batch as BatchSpec, ColumnRef, CsvSource, FeatureColumns, LabelRead, Shuffle, SineSource,
    SourceKind, SourceSpec, Split, Transform,
};
use crate::data::typing::element_type;
use crate::diag::Span;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn step<T>(op: T) -> Step<T> {
    Step {
        op,
        span: Span::default(),
    }
}

fn digits(batch: usize, drop_remainder: bool) -> PipelineSpec {
    PipelineSpec {
        name: "Digits".into(),
        span: Span::default(),
        source: SourceSpec {
            kind: SourceKind::Csv(CsvSource {
                path: "data/digits.csv".into(),
                label: Some(ColumnRef::Name("target".into())),
                label_read: LabelRead::Class { classes: Some(10) },
                features: FeatureColumns::AllButLabel { count: Some(64) },
                header: true,
                more_labels: Vec::new(),
                label_spans: Vec::new(),
            }),
            span: Span::default(),
        },
        preprocess: vec![
            step(Transform::Reshape {
                shape: vec![8, 8, 1],
            }),
            step(Transform::Standardize { fitted: None }),
        ],
        augment: vec![step(Augment::Rotate { degrees: 10.0 })],
        split: Some(Split {
            validation: 0.2,
            test: 0.0,
            stratify: false,
            seed: 7,
            span: Span::default(),
        }),
        shuffle: Some(Shuffle {
            seed: 42,
            span: Span::default(),
        }),
        batch: BatchSpec {
            size: batch,
            drop_remainder,
            span: Span::default(),
        },
        seed: 1,
        inputs: Vec::new(),
    }
}

#[test]
fn shipped_digits_load_as_1797_images_of_8x8_with_10_classes() {
    let spec = digits(64, false);
    let ty = element_type(&spec).unwrap();
    assert_eq!(ty.shape, vec![8, 8, 1]);
    let ds = load_dataset(&spec, &root()).unwrap();
    let total = ds.train.features.len() + ds.validation.features.len();
    assert_eq!(total, 1797);
    assert_eq!(ds.validation.features.len(), 359); // round(1797 * 0.2)
    assert_eq!(ds.train.features.sample_shape(), &[8, 8, 1]);
    let mut classes = std::collections::BTreeSet::new();
    for s in [&ds.train, &ds.validation] {
        let Labels::Class(c) = &s.labels else {
            panic!()
        };
        classes.extend(c.iter().copied());
    }
    assert_eq!(classes, (0..10).collect());
    // the fitted statistics are in the returned spec: one per channel, from training rows
    let Transform::Standardize { fitted: Some(f) } = &ds.spec.preprocess[1].op else {
        panic!()
    };
    assert_eq!(f.shift.len(), 1);
    assert!(f.shift[0] > 4.0 && f.shift[0] < 5.5, "{}", f.shift[0]); // digits' mean pixel ≈ 4.9
    let Features::F32(train) = &ds.train.features else {
        panic!()
    };
    let mean = train.mean().unwrap();
    assert!(mean.abs() < 1e-3, "{mean}");
}

#[test]
fn batches_cover_the_epoch_shuffled_reproducibly() {
    let ds = load_dataset(&digits(100, false), &root()).unwrap();
    let loader = ds.train_loader();
    assert_eq!(loader.batches_per_epoch(), 15); // 1438 samples
    let batches: Vec<Batch> = loader.epoch(0).map(Result::unwrap).collect();
    assert_eq!(batches.len(), 15);
    assert_eq!(batches[14].indices.len(), 38);
    let Features::F32(f) = &batches[0].features else {
        panic!()
    };
    assert_eq!(f.shape(), &[100, 8, 8, 1]);
    let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_ne!(seen[..10], (0..10).collect::<Vec<_>>()[..]);
    seen.sort_unstable();
    assert_eq!(seen, (0..1438).collect::<Vec<_>>());
    let again: Vec<Batch> = loader.epoch(0).map(Result::unwrap).collect();
    assert_eq!(again, batches);
    let next: Vec<Batch> = loader.epoch(1).map(Result::unwrap).collect();
    assert_ne!(next[0].indices, batches[0].indices);

    let dropped = load_dataset(&digits(100, true), &root())
        .unwrap()
        .train_loader();
    assert_eq!(dropped.epoch(0).count(), 14);
    // validation: in order, not augmented, last partial batch kept
    let val: Vec<Batch> = ds
        .validation_loader()
        .epoch(0)
        .map(Result::unwrap)
        .collect();
    assert_eq!(val.len(), 4);
    assert_eq!(val[0].indices, (0..100).collect::<Vec<_>>());
}

#[test]
fn stopping_early_ends_the_background_thread() {
    let ds = load_dataset(&digits(10, false), &root()).unwrap();
    let mut epoch = ds.train_loader().epoch(0);
    assert!(epoch.next().is_some());
    drop(epoch); // must not hang
}

#[test]
fn too_small_data_sets_are_reported() {
    let mut spec = digits(5000, false);
    let d = load_dataset(&spec, &root()).unwrap_err();
    assert_eq!(d.code, DATA_TOO_SMALL);
    spec.source.kind = SourceKind::Sine(SineSource {
        n: 3,
        period: 10.0,
        noise: 0.0,
        seed: 0,
    });
    spec.preprocess.clear();
    spec.augment.clear();
    spec.batch.size = 1;
    spec.split.as_mut().unwrap().validation = 0.1; // round(0.3) = 0 validation samples
    assert_eq!(
        load_dataset(&spec, &root()).unwrap_err().code,
        DATA_TOO_SMALL
    );
}

#[test]
fn a_stratified_test_split_is_held_out_and_statistics_fit_on_training_rows_only() {
    let mut spec = digits(64, false);
    spec.split = Some(Split {
        validation: 0.1,
        test: 0.1,
        stratify: true,
        seed: 7,
        span: Span::default(),
    });
    let ds = load_dataset(&spec, &root()).unwrap();
    // 1797 rows: round(179.7) = 180 validation, 180 test, 1437 training.
    let sizes = [&ds.train, &ds.validation, &ds.test].map(|s| s.features.len());
    assert_eq!(sizes, [1437, 180, 180]);
    let class_counts = |s: &Samples| {
        let Labels::Class(c) = &s.labels else {
            panic!()
        };
        let mut n = [0usize; 10];
        for &k in c {
            n[k as usize] += 1;
        }
        n
    };
    let (train, val, test) = (
        class_counts(&ds.train),
        class_counts(&ds.validation),
        class_counts(&ds.test),
    );
    for k in 0..10 {
        // Each class's share of each held-out split is a tenth of its rows, within one row.
        let total = (train[k] + val[k] + test[k]) as f64;
        for held in [val[k], test[k]] {
            assert!(
                (held as f64 - total / 10.0).abs() <= 1.0,
                "class {k}: {held} of {total}"
            );
        }
    }
    // Standardized with the training rows' statistics: the training features have mean 0,
    // the held-out ones only about 0.
    let mean = |s: &Samples| {
        let Features::F32(a) = &s.features else {
            panic!()
        };
        a.mean().unwrap()
    };
    assert!(mean(&ds.train).abs() < 1e-3);
    assert!(mean(&ds.test).abs() > 1e-3 && mean(&ds.test).abs() < 0.2);
    assert_eq!(ds.test_loader().len(), 180);
}
