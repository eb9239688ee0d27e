//! Preprocessing against hand-computed values.

use super::*;
use crate::diag::Span;
use ndarray::ArrayD;

fn f32_samples(shape: &[usize], values: Vec<f32>, labels: Labels) -> Samples {
    Samples {
        features: Features::F32(ArrayD::from_shape_vec(shape.to_vec(), values).unwrap()),
        labels,
    }
}

fn values(s: &Samples) -> Vec<f32> {
    match &s.features {
        Features::F32(a) => a.iter().copied().collect(),
        Features::I64(a) => a.iter().map(|&v| v as f32).collect(),
        Features::Groups(_) => panic!("one feature tensor expected"),
    }
}

fn step(op: Transform) -> Step<Transform> {
    Step {
        op,
        span: Span::default(),
    }
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

#[test]
fn standardize_fits_on_training_rows_only_and_stores_the_numbers() {
    // feature 0: training rows 0, 1 hold 1 and 3 → mean 2, std 1; feature 1: 10, 30 → 20, 10.
    // Row 2 (validation) is 100, 100 and must not move the statistics.
    let s = f32_samples(
        &[3, 2],
        vec![1.0, 10.0, 3.0, 30.0, 100.0, 100.0],
        Labels::None,
    );
    let mut steps = vec![step(Transform::Standardize { fitted: None })];
    let out = apply_all(&mut steps, s.clone(), &|_| vec![0, 1]).unwrap();
    close(&values(&out), &[-1.0, -1.0, 1.0, 1.0, 98.0, 8.0]);
    let Transform::Standardize { fitted: Some(f) } = &steps[0].op else {
        panic!()
    };
    assert_eq!(f.shift, vec![2.0, 20.0]);
    assert_eq!(f.scale, vec![1.0, 10.0]);
    // applying the fitted step again (inference) uses the stored numbers, not new ones
    let again = apply_all(&mut steps, s, &|_| vec![2]).unwrap();
    close(&values(&again), &[-1.0, -1.0, 1.0, 1.0, 98.0, 8.0]);
}

#[test]
fn normalize_maps_training_range_to_unit_and_constant_features_stay_finite() {
    let s = f32_samples(&[3, 2], vec![2.0, 5.0, 4.0, 5.0, 3.0, 5.0], Labels::None);
    let mut steps = vec![step(Transform::Normalize { fitted: None })];
    let out = apply_all(&mut steps, s, &|n| (0..n).collect()).unwrap();
    close(&values(&out), &[0.0, 0.0, 1.0, 0.0, 0.5, 0.0]);
}

#[test]
fn scale_one_hot_reshape_and_pad() {
    let s = f32_samples(
        &[2, 4],
        vec![0.0, 16.0, 8.0, 4.0, 1.0, 2.0, 3.0, 4.0],
        Labels::Class(vec![2, 0]),
    );
    let mut steps = vec![
        step(Transform::Scale {
            factor: 1.0 / 16.0,
            offset: 0.0,
        }),
        step(Transform::Reshape {
            shape: vec![2, 2, 1],
        }),
        step(Transform::OneHot { classes: Some(3) }),
    ];
    let out = apply_all(&mut steps, s, &|n| (0..n).collect()).unwrap();
    assert_eq!(out.features.shape(), &[2, 2, 2, 1]);
    close(
        &values(&out),
        &[0.0, 1.0, 0.5, 0.25, 0.0625, 0.125, 0.1875, 0.25],
    );
    let Labels::Values(l) = &out.labels else {
        panic!()
    };
    assert_eq!(
        l.iter().copied().collect::<Vec<_>>(),
        vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    );

    let bad = f32_samples(&[1, 1], vec![0.0], Labels::Class(vec![3]));
    let mut one_hot = vec![step(Transform::OneHot { classes: Some(3) })];
    let d = apply_all(&mut one_hot, bad, &|n| (0..n).collect()).unwrap_err();
    assert_eq!(d.code, DATA_LABEL_RANGE);

    let tokens = Samples {
        features: Features::I64(
            ArrayD::from_shape_vec(vec![2, 3], vec![5, 6, 7, 8, 9, 10]).unwrap(),
        ),
        labels: Labels::None,
    };
    let mut pad = vec![step(Transform::Pad {
        length: 4,
        value: 0,
    })];
    let out = apply_all(&mut pad, tokens.clone(), &|n| (0..n).collect()).unwrap();
    close(&values(&out), &[5.0, 6.0, 7.0, 0.0, 8.0, 9.0, 10.0, 0.0]);
    let mut truncate = vec![step(Transform::Pad {
        length: 2,
        value: 0,
    })];
    let out = apply_all(&mut truncate, tokens, &|n| (0..n).collect()).unwrap();
    close(&values(&out), &[5.0, 6.0, 8.0, 9.0]);
}

#[test]
fn resize_step_upsamples_each_image() {
    let s = f32_samples(&[1, 2, 2, 1], vec![0.0, 1.0, 2.0, 3.0], Labels::None);
    let mut steps = vec![step(Transform::Resize {
        height: 4,
        width: 4,
    })];
    let out = apply_all(&mut steps, s, &|n| (0..n).collect()).unwrap();
    assert_eq!(out.features.shape(), &[1, 4, 4, 1]);
    let v = values(&out);
    close(&v[4..8], &[0.5, 0.75, 1.25, 1.5]);
}

#[test]
fn moving_average_and_window_on_a_series() {
    let s = f32_samples(&[5, 1], vec![1.0, 2.0, 6.0, 4.0, 5.0], Labels::None);
    let mut ma = vec![step(Transform::MovingAverage { window: 3 })];
    let out = apply_all(&mut ma, s.clone(), &|n| (0..n).collect()).unwrap();
    // centred, the ends average what exists: (1+2)/2, (1+2+6)/3, (2+6+4)/3, (6+4+5)/3, (4+5)/2
    close(&values(&out), &[1.5, 3.0, 4.0, 5.0, 4.5]);

    let mut win = vec![step(Transform::Window {
        size: 2,
        horizon: 1,
    })];
    let out = apply_all(&mut win, s.clone(), &|n| (0..n).collect()).unwrap();
    assert_eq!(out.features.shape(), &[3, 2, 1]);
    close(&values(&out), &[1.0, 2.0, 2.0, 6.0, 6.0, 4.0]);
    let Labels::Values(y) = &out.labels else {
        panic!()
    };
    assert_eq!(y.iter().copied().collect::<Vec<_>>(), vec![6.0, 4.0, 5.0]);

    let mut long = vec![step(Transform::Window {
        size: 5,
        horizon: 1,
    })];
    let d = apply_all(&mut long, s, &|n| (0..n).collect()).unwrap_err();
    assert_eq!(d.code, DATA_TOO_SMALL);
}
