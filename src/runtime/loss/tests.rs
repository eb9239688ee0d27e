//! Loss tests: hand-computed values (several from the Keras documentation), gradients against
//! central finite differences of independent f64 reference formulas, the clip at eps, logits vs
//! probability forms, and refused inputs.

use ndarray::{array, ArrayD, IxDyn};

use super::*;

/// Deterministic values in `[lo, hi)`, spread without a random generator.
fn values(n: usize, seed: f64, lo: f64, hi: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let u = ((i as f64 + 1.0) * 12.9898 + seed * 78.233).sin() * 43_758.545_3;
            lo + (hi - lo) * (u - u.floor())
        })
        .collect()
}

fn f32_array(shape: &[usize], v: &[f64]) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), v.iter().map(|&x| x as f32).collect()).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

fn assert_all_close(actual: &ArrayD<f32>, expected: &[f64], tol: f64) {
    assert_eq!(actual.len(), expected.len());
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(close(f64::from(a), e, tol), "element {i}: {a} vs {e}");
    }
}

/// Checks `grad` against the central finite difference of `reference` at `x` (f64), and the
/// loss against `reference(x)`.
fn check_against_reference(
    out: &LossOutput,
    x: &[f64],
    reference: impl Fn(&[f64]) -> f64,
    tol: f64,
) {
    let expected_loss = reference(x);
    assert!(
        close(f64::from(out.loss), expected_loss, 1e-6),
        "loss {} vs {expected_loss}",
        out.loss
    );
    let h = 1e-6;
    let numeric: Vec<f64> = (0..x.len())
        .map(|i| {
            let mut plus = x.to_vec();
            let mut minus = x.to_vec();
            plus[i] += h;
            minus[i] -= h;
            (reference(&plus) - reference(&minus)) / (2.0 * h)
        })
        .collect();
    assert_all_close(&out.grad, &numeric, tol);
}

/// The f32-rounded values as f64, so the reference sees exactly what the loss saw.
fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x as f32)).collect()
}

fn mean(v: impl Iterator<Item = f64>, n: usize) -> f64 {
    v.sum::<f64>() / n as f64
}

fn log_softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    row.iter().map(|v| v - lse).collect()
}

#[test]
fn mse_and_mae_by_hand() {
    let y = array![1.0_f32, 2.0, 3.0].into_dyn();
    let t = array![1.0_f32, 0.0, 5.0].into_dyn();
    let mse = mean_squared_error(&y.view(), &t.view()).unwrap();
    assert!(close(f64::from(mse.loss), 8.0 / 3.0, 1e-7));
    assert_all_close(&mse.grad, &[0.0, 4.0 / 3.0, -4.0 / 3.0], 1e-7);
    let mae = mean_absolute_error(&y.view(), &t.view()).unwrap();
    assert!(close(f64::from(mae.loss), 4.0 / 3.0, 1e-7));
    assert_all_close(&mae.grad, &[0.0, 1.0 / 3.0, -1.0 / 3.0], 1e-7);
}

#[test]
fn keras_documented_values() {
    // keras.losses.BinaryCrossentropy docs: 0.815
    let t = array![[0.0_f32, 1.0], [0.0, 0.0]].into_dyn();
    let p = array![[0.6_f32, 0.4], [0.4, 0.6]].into_dyn();
    let bce = binary_crossentropy(&p.view(), &t.view(), false).unwrap();
    let expected = -(0.4_f64.ln() * 3.0 + 0.6_f64.ln()) / 4.0; // 0.81492...
    assert!(close(f64::from(bce.loss), expected, 1e-6));
    assert!((bce.loss - 0.815).abs() < 5e-4);
    // from logits, keras docs: 0.865
    let t = array![0.0_f32, 1.0, 0.0, 0.0].into_dyn();
    let x = array![-18.6_f32, 0.51, 2.94, -12.8].into_dyn();
    let bce = binary_crossentropy(&x.view(), &t.view(), true).unwrap();
    assert!((bce.loss - 0.865).abs() < 5e-4, "{}", bce.loss);
    // keras.losses.CategoricalCrossentropy docs: 1.177 (= (-ln 0.95 - ln 0.1) / 2)
    let t = array![[0.0_f32, 1.0, 0.0], [0.0, 0.0, 1.0]].into_dyn();
    let p = array![[0.05_f32, 0.95, 0.0], [0.1, 0.8, 0.1]].into_dyn();
    let cce = categorical_crossentropy(&p.view(), &t.view(), false).unwrap();
    let expected = (-(0.95_f64.ln()) - 0.1_f64.ln()) / 2.0;
    assert!(close(f64::from(cce.loss), expected, 1e-6));
    // the same with sparse labels [1, 2]: Keras computes ln Σp' - ln p'_y, here within 1e-7.
    let labels = array![1_i32, 2].into_dyn();
    let sparse =
        sparse_categorical_crossentropy(&p.view(), &SparseLabels::I32(labels.view()), false)
            .unwrap();
    assert!(close(f64::from(sparse.loss), expected, 1e-6));
}

#[test]
fn binary_crossentropy_by_hand() {
    let p = array![0.9_f32, 0.2].into_dyn();
    let t = array![1.0_f32, 0.0].into_dyn();
    let out = binary_crossentropy(&p.view(), &t.view(), false).unwrap();
    let (p0, p1) = (f64::from(0.9_f32), f64::from(0.2_f32));
    assert!(close(
        f64::from(out.loss),
        -(p0.ln() + (1.0 - p1).ln()) / 2.0,
        1e-7
    ));
    assert_all_close(&out.grad, &[-1.0 / p0 / 2.0, 1.0 / (1.0 - p1) / 2.0], 1e-7);
}

#[test]
fn clipping_at_eps() {
    let cap = -(1e-7_f64.ln()); // 16.118...
                                // confidently wrong: loss capped at -ln(eps), gradient 0 (the clip is active)
    let p = array![0.0_f32, 1.0].into_dyn();
    let t = array![1.0_f32, 0.0].into_dyn();
    let out = binary_crossentropy(&p.view(), &t.view(), false).unwrap();
    assert!(close(f64::from(out.loss), cap, 1e-6), "{}", out.loss);
    assert_eq!(out.grad, ArrayD::<f32>::zeros(IxDyn(&[2])));
    // just inside the clip range: the gradient flows, and is large
    let p = array![1e-6_f32].into_dyn();
    let t = array![1.0_f32].into_dyn();
    let out = binary_crossentropy(&p.view(), &t.view(), false).unwrap();
    assert!(close(
        f64::from(out.grad[0]),
        -1.0 / f64::from(1e-6_f32),
        1e-6
    ));
    // categorical: a zero probability on the true class
    let p = array![[0.0_f32, 0.5, 0.5]].into_dyn();
    let t = array![[1.0_f32, 0.0, 0.0]].into_dyn();
    let out = categorical_crossentropy(&p.view(), &t.view(), false).unwrap();
    assert!(close(f64::from(out.loss), cap, 1e-6));
    let labels = array![0_u32].into_dyn();
    let out = sparse_categorical_crossentropy(&p.view(), &SparseLabels::U32(labels.view()), false)
        .unwrap();
    // ln(0.5 + 0.5 + 1e-7) - ln(1e-7)
    assert!(close(
        f64::from(out.loss),
        cap + (1.0 + 1e-7_f64).ln(),
        1e-6
    ));
    assert_eq!(
        out.grad[[0, 0]].to_bits(),
        0,
        "clipped entry passes no gradient"
    );
}

#[test]
fn elementwise_gradients_match_finite_differences() {
    let shape = [3, 4];
    let y = rounded(&values(12, 1.0, -2.0, 2.0));
    let t = rounded(&values(12, 2.0, -2.0, 2.0));
    let (ya, ta) = (f32_array(&shape, &y), f32_array(&shape, &t));
    let n = y.len();
    let mse = mean_squared_error(&ya.view(), &ta.view()).unwrap();
    check_against_reference(
        &mse,
        &y,
        |y| mean(y.iter().zip(&t).map(|(a, b)| (a - b).powi(2)), n),
        1e-5,
    );
    let mae = mean_absolute_error(&ya.view(), &ta.view()).unwrap();
    check_against_reference(
        &mae,
        &y,
        |y| mean(y.iter().zip(&t).map(|(a, b)| (a - b).abs()), n),
        1e-5,
    );

    let p = rounded(&values(12, 3.0, 0.01, 0.99));
    let labels = rounded(&values(12, 4.0, 0.0, 1.0)); // soft labels in [0, 1]
    let (pa, la) = (f32_array(&shape, &p), f32_array(&shape, &labels));
    let bce = binary_crossentropy(&pa.view(), &la.view(), false).unwrap();
    let reference = |p: &[f64]| {
        mean(
            p.iter()
                .zip(&labels)
                .map(|(p, t)| -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())),
            n,
        )
    };
    check_against_reference(&bce, &p, reference, 1e-5);

    let x = rounded(&values(12, 5.0, -30.0, 30.0));
    let xa = f32_array(&shape, &x);
    let bce = binary_crossentropy(&xa.view(), &la.view(), true).unwrap();
    let reference = |x: &[f64]| {
        mean(
            x.iter().zip(&labels).map(|(x, t)| {
                let p = 1.0 / (1.0 + (-x).exp());
                // ln(1 - p) = ln(p) - x, stable enough for |x| <= 30 in f64
                -(t * p.ln() + (1.0 - t) * (p.ln() - x))
            }),
            n,
        )
    };
    check_against_reference(&bce, &x, reference, 1e-5);
}

#[test]
fn categorical_gradients_match_finite_differences() {
    let (rows, classes) = (4, 5);
    let shape = [2, 2, classes]; // a rank-3 output: rows are the leading axes
    let n = rows * classes;
    let p = rounded(&values(n, 6.0, 0.05, 1.0)); // unnormalized on purpose
    let onehot: Vec<f64> = (0..n)
        .map(|i| f64::from(u8::from(i % classes == (i / classes) % classes)))
        .collect();
    let soft = rounded(&values(n, 7.0, 0.0, 0.5));
    let x = rounded(&values(n, 8.0, -6.0, 6.0));
    let labels = [0_i64, 3, 4, 1];
    let label_array = ArrayD::from_shape_vec(IxDyn(&[2, 2]), labels.to_vec()).unwrap();
    let (pa, xa) = (f32_array(&shape, &p), f32_array(&shape, &x));

    for target in [&onehot, &soft] {
        let ta = f32_array(&shape, target);
        let out = categorical_crossentropy(&pa.view(), &ta.view(), false).unwrap();
        let reference = |p: &[f64]| {
            let total: f64 = p
                .chunks(classes)
                .zip(target.chunks(classes))
                .map(|(row, t)| {
                    let s: f64 = row.iter().sum();
                    -row.iter()
                        .zip(t)
                        .map(|(p, t)| t * (p / s).ln())
                        .sum::<f64>()
                })
                .sum();
            total / rows as f64
        };
        check_against_reference(&out, &p, reference, 1e-5);

        let out = categorical_crossentropy(&xa.view(), &ta.view(), true).unwrap();
        let reference = |x: &[f64]| {
            let total: f64 = x
                .chunks(classes)
                .zip(target.chunks(classes))
                .map(|(row, t)| {
                    -log_softmax(row)
                        .iter()
                        .zip(t)
                        .map(|(l, t)| l * t)
                        .sum::<f64>()
                })
                .sum();
            total / rows as f64
        };
        check_against_reference(&out, &x, reference, 1e-5);
    }

    let sparse = SparseLabels::I64(label_array.view());
    let out = sparse_categorical_crossentropy(&pa.view(), &sparse, false).unwrap();
    let reference = |p: &[f64]| {
        let total: f64 = p
            .chunks(classes)
            .zip(labels)
            .map(|(row, y)| row.iter().sum::<f64>().ln() - row[y as usize].ln())
            .sum();
        total / rows as f64
    };
    check_against_reference(&out, &p, reference, 1e-5);
    let out = sparse_categorical_crossentropy(&xa.view(), &sparse, true).unwrap();
    let reference = |x: &[f64]| {
        let total: f64 = x
            .chunks(classes)
            .zip(labels)
            .map(|(row, y)| -log_softmax(row)[y as usize])
            .sum();
        total / rows as f64
    };
    check_against_reference(&out, &x, reference, 1e-5);
}

#[test]
fn logits_and_probability_forms_agree() {
    let x = rounded(&values(6, 9.0, -4.0, 4.0));
    let t = rounded(&values(6, 10.0, 0.0, 1.0));
    let p: Vec<f64> = x.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
    let (xa, ta, pa) = (
        f32_array(&[6], &x),
        f32_array(&[6], &t),
        f32_array(&[6], &p),
    );
    let from_logits = binary_crossentropy(&xa.view(), &ta.view(), true).unwrap();
    let from_probs = binary_crossentropy(&pa.view(), &ta.view(), false).unwrap();
    assert!(close(
        f64::from(from_logits.loss),
        f64::from(from_probs.loss),
        1e-6
    ));
    // chain rule: dL/dx = dL/dp · p(1 - p)
    for ((gx, gp), p) in from_logits.grad.iter().zip(&from_probs.grad).zip(&p) {
        assert!(close(f64::from(*gx), f64::from(*gp) * p * (1.0 - p), 1e-5));
    }

    let x = array![[1.0_f32, -2.0, 0.5], [3.0, 3.0, -1.0]].into_dyn();
    let soft = softmax_cross_entropy(&x.view(), &Targets::Dense(x.view())).unwrap();
    let probabilities = soft.probabilities;
    for row in probabilities.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-6);
    }
    let onehot = array![[0.0_f32, 0.0, 1.0], [1.0, 0.0, 0.0]].into_dyn();
    let labels = array![2_i32, 0].into_dyn();
    let a = categorical_crossentropy(&x.view(), &onehot.view(), true).unwrap();
    let b = categorical_crossentropy(&probabilities.view(), &onehot.view(), false).unwrap();
    let c = sparse_categorical_crossentropy(&x.view(), &SparseLabels::I32(labels.view()), true)
        .unwrap();
    let d = sparse_categorical_crossentropy(
        &probabilities.view(),
        &SparseLabels::I32(labels.view()),
        false,
    )
    .unwrap();
    for other in [&b, &c, &d] {
        assert!(close(f64::from(a.loss), f64::from(other.loss), 1e-6));
    }
    assert_eq!(a.grad, c.grad);
}

#[test]
fn fused_softmax_cross_entropy_is_softmax_minus_onehot_over_n() {
    // huge logits: no overflow
    let x = array![[1000.0_f32, 0.0, -1000.0], [5.0, 5.0, 5.0]].into_dyn();
    let labels = array![1_u32, 2].into_dyn();
    let out = softmax_cross_entropy(
        &x.view(),
        &Targets::Sparse(SparseLabels::U32(labels.view())),
    )
    .unwrap();
    // row 0: softmax ≈ [1, e^-1000, 0], loss 1000; row 1: uniform, loss ln 3
    assert!(close(
        f64::from(out.loss),
        f64::midpoint(1000.0, 3.0_f64.ln()),
        1e-6
    ));
    let third = 1.0 / 3.0;
    let expected = [
        0.5,
        -0.5,
        0.0,
        third / 2.0,
        third / 2.0,
        (third - 1.0) / 2.0,
    ];
    assert_all_close(&out.grad, &expected, 1e-6);
    assert!(out.probabilities.iter().all(|p| p.is_finite()));
    let onehot = array![[0.0_f32, 1.0, 0.0], [0.0, 0.0, 1.0]].into_dyn();
    let dense = softmax_cross_entropy(&x.view(), &Targets::Dense(onehot.view())).unwrap();
    assert_eq!(dense, out);
}

#[test]
fn bad_targets_are_errors_not_panics() {
    let p = array![[0.2_f32, 0.8], [0.5, 0.5], [0.9, 0.1]].into_dyn();
    let check = |labels: SparseLabels, row, label| {
        let err = sparse_categorical_crossentropy(&p.view(), &labels, true).unwrap_err();
        assert_eq!(
            err,
            LossError::LabelOutOfRange {
                row,
                label,
                classes: 2
            }
        );
        assert!(err.to_string().contains(&format!("row {row}")));
    };
    check(SparseLabels::I32(array![0, -1, 1].into_dyn().view()), 1, -1);
    check(SparseLabels::I64(array![0, 1, 2].into_dyn().view()), 2, 2);
    check(
        SparseLabels::U32(array![u32::MAX, 0, 0].into_dyn().view()),
        0,
        i64::from(u32::MAX),
    );
    let i64_max = array![0, i64::MAX, 0].into_dyn();
    check(SparseLabels::I64(i64_max.view()), 1, i64::MAX);

    // a trailing axis of 1 is accepted, other shapes are not
    let column = array![[1_i32], [0], [1]].into_dyn();
    let flat = array![1_i32, 0, 1].into_dyn();
    let a = sparse_categorical_crossentropy(&p.view(), &SparseLabels::I32(column.view()), false);
    let b = sparse_categorical_crossentropy(&p.view(), &SparseLabels::I32(flat.view()), false);
    assert_eq!(a.unwrap(), b.unwrap());
    let wrong = array![1_i32, 0].into_dyn();
    let err = sparse_categorical_crossentropy(&p.view(), &SparseLabels::I32(wrong.view()), false);
    assert!(matches!(err, Err(LossError::LabelShape { .. })));

    let t = array![1.0_f32, 0.0].into_dyn();
    assert!(matches!(
        mean_squared_error(&p.view(), &t.view()),
        Err(LossError::ShapeMismatch { .. })
    ));
    let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 3]));
    assert!(matches!(
        categorical_crossentropy(&empty.view(), &empty.view(), true),
        Err(LossError::EmptyBatch { .. })
    ));
    assert!(matches!(
        mean_absolute_error(&empty.view(), &empty.view()),
        Err(LossError::EmptyBatch { .. })
    ));
    let no_classes = ArrayD::<f32>::zeros(IxDyn(&[3, 0]));
    let no_labels = ArrayD::<i32>::zeros(IxDyn(&[3]));
    assert!(matches!(
        sparse_categorical_crossentropy(
            &no_classes.view(),
            &SparseLabels::I32(no_labels.view()),
            true
        ),
        Err(LossError::NoClasses { .. })
    ));
    let scalar = ArrayD::from_elem(IxDyn(&[]), 1.0_f32);
    assert!(matches!(
        categorical_crossentropy(&scalar.view(), &scalar.view(), true),
        Err(LossError::NoClasses { .. })
    ));

    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    let err = loss
        .evaluate(&p.view(), &Targets::Dense(p.view()))
        .unwrap_err();
    assert!(matches!(err, LossError::TargetKind { .. }));
    let err = Loss::MeanSquaredError
        .evaluate(&p.view(), &Targets::Sparse(SparseLabels::I32(flat.view())))
        .unwrap_err();
    assert!(matches!(err, LossError::TargetKind { loss: "mse", .. }));
    let ok = loss.evaluate(&p.view(), &Targets::Sparse(SparseLabels::I32(flat.view())));
    assert_eq!(
        ok.unwrap(),
        sparse_categorical_crossentropy(&p.view(), &SparseLabels::I32(flat.view()), true).unwrap()
    );
}

#[test]
fn nan_output_gives_nan_loss() {
    let p = array![f32::NAN, 0.5].into_dyn();
    let t = array![1.0_f32, 0.0].into_dyn();
    for from_logits in [false, true] {
        let out = binary_crossentropy(&p.view(), &t.view(), from_logits).unwrap();
        assert!(out.loss.is_nan());
    }
    let rows = array![[f32::NAN, 0.5]].into_dyn();
    let onehot = array![[1.0_f32, 0.0]].into_dyn();
    for from_logits in [false, true] {
        let out = categorical_crossentropy(&rows.view(), &onehot.view(), from_logits).unwrap();
        assert!(out.loss.is_nan());
    }
}

/// The contiguous path's fixed order, written one lane at a time as the reference: element `i`
/// to partial sum `i mod 8`, partials combined pairwise, the tail added last; the gradient
/// element by element. The kernel must give exactly these bits (mse, mae and binary
/// cross-entropy, odd lengths with and without a tail).
#[test]
fn elementwise_losses_keep_the_reference_order_bit_for_bit() {
    type Pair = (fn(f64, f64) -> f64, fn(f64, f64) -> f64);
    let mse: Pair = (|y, t| (y - t) * (y - t), |y, t| 2.0 * (y - t));
    let mae: Pair = (
        |y, t| (y - t).abs(),
        |y, t| {
            let d = y - t;
            if d > 0.0 {
                1.0
            } else if d < 0.0 {
                -1.0
            } else {
                d * 0.0
            }
        },
    );
    let reference = |ys: &[f32], ts: &[f32], (per, grad): Pair| {
        let scale = 1.0 / ys.len() as f64;
        let mut partial = [0.0f64; 8];
        let full = ys.len() / 8 * 8;
        for i in 0..full {
            partial[i % 8] += per(f64::from(ys[i]), f64::from(ts[i]));
        }
        let mut width = 8;
        while width > 1 {
            width /= 2;
            for l in 0..width {
                partial[l] += partial[l + width];
            }
        }
        let mut total = partial[0];
        for i in full..ys.len() {
            total += per(f64::from(ys[i]), f64::from(ts[i]));
        }
        let g: Vec<u32> = ys
            .iter()
            .zip(ts)
            .map(|(&y, &t)| ((grad(f64::from(y), f64::from(t)) * scale) as f32).to_bits())
            .collect();
        (((total / ys.len() as f64) as f32).to_bits(), g)
    };
    for n in [1, 7, 8, 9, 64, 1003] {
        let y = f32_array(&[n], &values(n, 1.0, -2.0, 2.0));
        let t = f32_array(&[n], &values(n, 2.0, -2.0, 2.0));
        let (ys, ts) = (y.as_slice().unwrap(), t.as_slice().unwrap());
        for (name, got, pair) in [
            (
                "mse",
                mean_squared_error(&y.view(), &t.view()).unwrap(),
                mse,
            ),
            (
                "mae",
                mean_absolute_error(&y.view(), &t.view()).unwrap(),
                mae,
            ),
        ] {
            let (loss, grad) = reference(ys, ts, pair);
            assert_eq!(got.loss.to_bits(), loss, "{name} loss, n = {n}");
            let bits: Vec<u32> = got.grad.iter().map(|v| v.to_bits()).collect();
            assert_eq!(bits, grad, "{name} gradient, n = {n}");
        }
    }
}

#[test]
fn huber_and_log_cosh_by_hand_and_by_finite_differences() {
    // Keras docs (Huber, delta 1): y_true [[0, 1], [0, 0]], y_pred [[0.6, 0.4], [0.4, 0.6]]
    // → 0.155: every |d| <= 1, so ½(0.36 + 0.36 + 0.16 + 0.36) / 4.
    let t = array![[0.0_f32, 1.0], [0.0, 0.0]].into_dyn();
    let y = array![[0.6_f32, 0.4], [0.4, 0.6]].into_dyn();
    let h = huber(&y.view(), &t.view(), 1.0).unwrap();
    assert!(close(f64::from(h.loss), 0.155, 1e-6), "{}", h.loss);
    // Outside delta the loss is linear: d = 3, delta 1 → 1·(3 - 0.5) = 2.5, gradient 1.
    let h = huber(
        &array![3.0_f32].into_dyn().view(),
        &array![0.0_f32].into_dyn().view(),
        1.0,
    )
    .unwrap();
    assert!(close(f64::from(h.loss), 2.5, 1e-7));
    assert_all_close(&h.grad, &[1.0], 1e-7);
    // Keras docs (LogCosh): y_pred [[1, 1], [0, 0]] → 0.108 (= ln cosh 1 / 4).
    let ones = array![[1.0_f32, 1.0], [0.0, 0.0]].into_dyn();
    let lc = log_cosh(&ones.view(), &t.view()).unwrap();
    assert!((lc.loss - 0.108).abs() < 5e-4, "{}", lc.loss);

    let shape = [3, 4];
    let y = rounded(&values(12, 6.0, -3.0, 3.0));
    let t = rounded(&values(12, 7.0, -3.0, 3.0));
    let (ya, ta) = (f32_array(&shape, &y), f32_array(&shape, &t));
    let n = y.len();
    let delta = 0.75;
    let h = huber(&ya.view(), &ta.view(), delta as f32).unwrap();
    let reference = |y: &[f64]| {
        mean(
            y.iter().zip(&t).map(|(a, b)| {
                let d = (a - b).abs();
                if d <= delta {
                    0.5 * d * d
                } else {
                    delta * d - 0.5 * delta * delta
                }
            }),
            n,
        )
    };
    check_against_reference(&h, &y, reference, 1e-5);
    let lc = log_cosh(&ya.view(), &ta.view()).unwrap();
    let reference = |y: &[f64]| mean(y.iter().zip(&t).map(|(a, b)| (a - b).cosh().ln()), n);
    check_against_reference(&lc, &y, reference, 1e-5);
    // No overflow far from the target: ln cosh 200 = 200 - ln 2.
    let far = log_cosh(
        &array![200.0_f32].into_dyn().view(),
        &array![0.0_f32].into_dyn().view(),
    )
    .unwrap();
    assert!(close(
        f64::from(far.loss),
        200.0 - std::f64::consts::LN_2,
        1e-7
    ));
}
