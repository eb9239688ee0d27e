//! The training step's bookkeeping: fused softmax + cross-entropy, the gd update, Keras'
//! moving statistics, and the NaN guard leaving parameters untouched.

use ndarray::{arr1, ArrayD};

use super::{f32_input, noise, trainer, Builder};
use crate::ir::{Activation, DType};
use crate::runtime::loss::{Loss, SparseLabels, Targets};
use crate::runtime::optim::{Gd, GdConfig, Optimizer};
use crate::runtime::train::{NonFiniteOrigin, TrainError};

fn gd() -> Optimizer {
    Optimizer::Gd(Gd::new(GdConfig::default()).unwrap())
}

/// `mean(−ln p_y)` of probabilities, in f64.
fn nll(p: &ndarray::ArrayViewD<'_, f32>, labels: &[i32]) -> f64 {
    let classes = p.shape()[1];
    let s = p.as_slice().unwrap();
    labels
        .iter()
        .enumerate()
        .map(|(r, &y)| -f64::from(s[r * classes + y as usize]).ln())
        .sum::<f64>()
        / labels.len() as f64
}

#[test]
fn fused_softmax_cross_entropy_matches_finite_differences_and_gd_applies_it() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[5]);
    let a = b.dense("d", x, 4, Activation::Tanh);
    let a = b.dense("out", a, 3, Activation::Softmax);
    let mut t = trainer(b.plan(a), 3);
    let xs = noise(&[6, 5], 9, 2.0);
    let labels = [0i32, 2, 1, 1, 0, 2];
    let la = ArrayD::from_shape_vec(vec![6], labels.to_vec()).unwrap();
    let targets = Targets::Sparse(SparseLabels::I32(la.view()));
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let before = t.params().tensors().to_vec();
    let expected_loss = nll(&t.forward(&[f32_input(&xs)], false).unwrap(), &labels);
    let report = t
        .train_step(&[f32_input(&xs)], &targets, loss, &mut gd(), 0.5, None)
        .unwrap();
    assert!((f64::from(report.loss) - expected_loss).abs() < 1e-5);
    let grads: Vec<ArrayD<f32>> = (0..before.len())
        .map(|i| t.param_grad(i).unwrap().to_owned())
        .collect();
    // gd: p_new = p_old - 0.5 g.
    for ((old, new), g) in before.iter().zip(t.params().tensors()).zip(&grads) {
        for ((&o, &n), &gv) in old.iter().zip(new.iter()).zip(g.iter()) {
            assert!((n - (o - 0.5 * gv)).abs() < 1e-6);
        }
    }
    // The gradient is d nll / d params at the old parameters.
    let mut probe = trainer(t.plan().clone(), 3);
    let h = 1e-2f32;
    for (i, g) in grads.iter().enumerate() {
        for e in [0, g.len() / 2, g.len() - 1] {
            let orig = probe.params.tensors_mut()[i].as_slice().unwrap()[e];
            probe.params.tensors_mut()[i].as_slice_mut().unwrap()[e] = orig + h;
            let up = nll(&probe.forward(&[f32_input(&xs)], true).unwrap(), &labels);
            probe.params.tensors_mut()[i].as_slice_mut().unwrap()[e] = orig - h;
            let down = nll(&probe.forward(&[f32_input(&xs)], true).unwrap(), &labels);
            probe.params.tensors_mut()[i].as_slice_mut().unwrap()[e] = orig;
            let numeric = (up - down) / f64::from(2.0 * h);
            let analytic = f64::from(g.as_slice().unwrap()[e]);
            assert!(
                (numeric - analytic).abs() < 1e-3 + 1e-2 * numeric.abs(),
                "param {i}[{e}]: {analytic} vs {numeric}"
            );
        }
    }
    assert_eq!(t.steps_done(), 1);
}

#[test]
fn batch_norm_moving_statistics_follow_keras() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[2]);
    let a = b.batch_norm("bn", x);
    let a = b.dense("d", a, 1, Activation::Linear);
    let mut t = trainer(b.plan(a), 1);
    // Channel 0: 1, 2, 3, 6 → mean 3, biased var 3.5. Channel 1: 0, 0, 4, 4 → mean 2, var 4.
    let xs = ndarray::arr2(&[[1.0f32, 0.0], [2.0, 0.0], [3.0, 4.0], [6.0, 4.0]]).into_dyn();
    let ys = ArrayD::<f32>::zeros(vec![4, 1]);
    t.train_step(
        &[f32_input(&xs)],
        &Targets::Dense(ys.view()),
        Loss::MeanSquaredError,
        &mut gd(),
        0.1,
        None,
    )
    .unwrap();
    let mean = t.params().get("bn.moving_mean").unwrap();
    let var = t.params().get("bn.moving_variance").unwrap();
    // moving = init·0.99 + batch·0.01, with init mean 0 and variance 1.
    let want_mean = arr1(&[0.03f32, 0.02]).into_dyn();
    let want_var = arr1(&[0.99 + 0.035f32, 0.99 + 0.04]).into_dyn();
    for (a, b) in mean.iter().zip(&want_mean).chain(var.iter().zip(&want_var)) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // Inference uses them: (x - 0.03)/sqrt(1.025 + 1e-3) for channel 0, before gamma/beta.
    let out = t.evaluate(&[f32_input(&xs)]).unwrap().to_owned();
    let train_out = t.forward(&[f32_input(&xs)], true).unwrap().to_owned();
    assert_ne!(out, train_out);
}

#[test]
fn non_finite_loss_stops_the_step_naming_it_and_leaves_parameters() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[3]);
    let a = b.dense("d", x, 2, Activation::Linear);
    let mut t = trainer(b.plan(a), 2);
    let good = noise(&[4, 3], 1, 1.0);
    let ys = ArrayD::<f32>::zeros(vec![4, 2]);
    let targets = Targets::Dense(ys.view());
    let mut opt = gd();
    t.train_step(
        &[f32_input(&good)],
        &targets,
        Loss::MeanSquaredError,
        &mut opt,
        0.1,
        None,
    )
    .unwrap();
    let before = t.params().clone();
    let mut bad = good.clone();
    bad[[2, 1]] = f32::NAN;
    let err = t
        .train_step(
            &[f32_input(&bad)],
            &targets,
            Loss::MeanSquaredError,
            &mut opt,
            0.1,
            None,
        )
        .unwrap_err();
    assert!(
        matches!(err, TrainError::NonFiniteLoss { step: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("training step 2"));
    let TrainError::NonFiniteLoss { origin, .. } = &err else {
        unreachable!()
    };
    assert_eq!(origin, &Some(NonFiniteOrigin::Input("x".into())), "{err}");
    assert!(
        err.to_string().contains("the input `x` of this batch"),
        "{err}"
    );
    assert_eq!(t.params(), &before);
    assert_eq!(t.steps_done(), 1);
    // Training resumes on good data.
    t.train_step(
        &[f32_input(&good)],
        &targets,
        Loss::MeanSquaredError,
        &mut opt,
        0.1,
        None,
    )
    .unwrap();
    assert_eq!(t.steps_done(), 2);
}

/// One gd step (lr 0.1) of an mse loss towards zero targets of `t`'s two outputs.
fn mse_step_to_zero(
    t: &mut crate::runtime::train::Trainer,
    x: &ArrayD<f32>,
) -> Result<crate::runtime::train::StepReport, TrainError> {
    let ys = ArrayD::<f32>::zeros(vec![x.shape()[0], 2]);
    t.train_step(
        &[f32_input(x)],
        &Targets::Dense(ys.view()),
        Loss::MeanSquaredError,
        &mut gd(),
        0.1,
        None,
    )
}

#[test]
fn a_loss_that_overflows_on_finite_values_says_so() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[3]);
    let a = b.dense("d", x, 2, Activation::Linear);
    let mut t = trainer(b.plan(a), 2);
    // Outputs near 1e25 are finite; their squares (the mse) are not.
    let huge = noise(&[4, 3], 1, 1.0).mapv(|v| v * 1e25);
    let err = mse_step_to_zero(&mut t, &huge).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::NonFiniteLoss {
                step: 1,
                origin: None,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("the loss itself overflowed"),
        "{err}"
    );
}

#[test]
fn a_non_finite_loss_names_the_first_layer_that_overflowed() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[3]);
    let d = b.dense("d", x, 2, Activation::Linear);
    let e = b.dense("e", d, 2, Activation::Linear);
    let mut t = trainer(b.plan(e), 2);
    let k = t
        .params()
        .names()
        .iter()
        .position(|n| n == "d.kernel")
        .unwrap();
    // Three inputs of 1 times weights of 2e38 sum to 6e38: infinite in `d` already.
    t.params.tensors_mut()[k].fill(2e38);
    let ones = ArrayD::<f32>::ones(vec![4, 3]);
    let err = mse_step_to_zero(&mut t, &ones).unwrap_err();
    let TrainError::NonFiniteLoss { origin, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(origin, &Some(NonFiniteOrigin::Step("d".into())), "{err}");
    assert!(err.to_string().contains("in the output of `d`"), "{err}");
}

#[test]
fn inputs_that_do_not_fit_the_plan_are_errors() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[3]);
    let a = b.dense("d", x, 2, Activation::Linear);
    let mut t = trainer(b.plan(a), 2);
    let wrong = noise(&[4, 5], 1, 1.0);
    let err = t.forward(&[f32_input(&wrong)], true).unwrap_err();
    assert!(matches!(err, TrainError::Input { .. }), "{err}");
    let ids = ndarray::arr2(&[[1i32, 2, 3]]).into_dyn();
    let err = t
        .forward(&[crate::runtime::train::Input::I32(ids.view())], true)
        .unwrap_err();
    assert!(err.to_string().contains("dtype"), "{err}");
    let err = t.forward(&[], true).unwrap_err();
    assert!(matches!(
        err,
        TrainError::InputCount {
            expected: 1,
            found: 0
        }
    ));
}

/// `Σ w_i (−ln p_{i, y_i}) / n` of probabilities, in f64.
fn weighted_nll(p: &ndarray::ArrayViewD<'_, f32>, labels: &[i32], w: &[f32]) -> f64 {
    let classes = p.shape()[1];
    let s = p.as_slice().unwrap();
    labels
        .iter()
        .zip(w)
        .enumerate()
        .map(|(r, (&y, &wi))| -f64::from(wi) * f64::from(s[r * classes + y as usize]).ln())
        .sum::<f64>()
        / labels.len() as f64
}

#[test]
fn class_weighted_step_matches_the_weighted_formula_and_finite_differences() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[5]);
    let a = b.dense("d", x, 4, Activation::Tanh);
    let a = b.dense("out", a, 3, Activation::Softmax);
    let mut t = trainer(b.plan(a), 3);
    let xs = noise(&[6, 5], 9, 2.0);
    let labels = [0i32, 2, 1, 1, 0, 2];
    // class weights [1, 3, 0.5] by label
    let w: Vec<f32> = labels
        .iter()
        .map(|&y| [1.0, 3.0, 0.5][y as usize])
        .collect();
    let la = ArrayD::from_shape_vec(vec![6], labels.to_vec()).unwrap();
    let targets = Targets::Sparse(SparseLabels::I32(la.view()));
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let expected = weighted_nll(&t.forward(&[f32_input(&xs)], false).unwrap(), &labels, &w);
    let report = t
        .train_step_weighted(
            &[f32_input(&xs)],
            &targets,
            loss,
            &mut gd(),
            (0.5, None),
            Some(&w),
        )
        .unwrap();
    assert!(
        (f64::from(report.loss) - expected).abs() < 1e-5,
        "{} vs {expected}",
        report.loss
    );
    let grads: Vec<ArrayD<f32>> = (0..t.params().tensors().len())
        .map(|i| t.param_grad(i).unwrap().to_owned())
        .collect();
    let mut probe = trainer(t.plan().clone(), 3);
    let h = 1e-2f32;
    for (i, g) in grads.iter().enumerate() {
        for e in [0, g.len() / 2, g.len() - 1] {
            let orig = probe.params.tensors_mut()[i].as_slice().unwrap()[e];
            let mut at = |d: f32| {
                probe.params.tensors_mut()[i].as_slice_mut().unwrap()[e] = orig + d;
                let p = probe.forward(&[f32_input(&xs)], true).unwrap();
                weighted_nll(&p, &labels, &w)
            };
            let numeric = (at(h) - at(-h)) / f64::from(2.0 * h);
            probe.params.tensors_mut()[i].as_slice_mut().unwrap()[e] = orig;
            let analytic = f64::from(g.as_slice().unwrap()[e]);
            assert!(
                (numeric - analytic).abs() < 1e-3 + 1e-2 * numeric.abs(),
                "param {i}[{e}]: {analytic} vs {numeric}"
            );
        }
    }
}

#[test]
fn class_weights_scale_a_binary_step() {
    // a sigmoid output (the unfused loss path): every weight 2 doubles the loss and gradients
    let build = || {
        let mut b = Builder::new();
        let x = b.input("x", DType::F32, &[4]);
        let a = b.dense("out", x, 1, Activation::Sigmoid);
        trainer(b.plan(a), 5)
    };
    let xs = noise(&[4, 4], 3, 1.0);
    let ys = ArrayD::from_shape_vec(vec![4, 1], vec![1.0_f32, 0.0, 0.0, 1.0]).unwrap();
    let targets = Targets::Dense(ys.view());
    let loss = Loss::BinaryCrossentropy { from_logits: false };
    let (mut plain, mut doubled) = (build(), build());
    let r1 = plain
        .train_step(&[f32_input(&xs)], &targets, loss, &mut gd(), 0.1, None)
        .unwrap();
    let r2 = doubled
        .train_step_weighted(
            &[f32_input(&xs)],
            &targets,
            loss,
            &mut gd(),
            (0.1, None),
            Some(&[2.0; 4]),
        )
        .unwrap();
    assert!(
        (r2.loss - 2.0 * r1.loss).abs() < 1e-6,
        "{} vs {}",
        r2.loss,
        r1.loss
    );
    for i in 0..plain.params().tensors().len() {
        let (g1, g2) = (plain.param_grad(i).unwrap(), doubled.param_grad(i).unwrap());
        for (a, b) in g1.iter().zip(g2.iter()) {
            assert!((b - 2.0 * a).abs() < 1e-6, "param {i}: {b} vs 2 × {a}");
        }
    }
}
