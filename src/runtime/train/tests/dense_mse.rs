//! The fused dense + mse step against the unfused forward, loss and backward: same loss,
//! predictions and gradients up to f32 summation order, deterministic, the same bits on the
//! AVX2 and baseline builds, and the unfused path's errors for batches it does not take.

use ndarray::ArrayD;

use super::{f32_input, noise, Builder};
use crate::ir::{Activation, DType, Init, Op};
use crate::plan::ExecutionPlan;
use crate::runtime::kernels::simd_train::baseline;
use crate::runtime::loss::{Loss, LossError, SparseLabels, Targets};
use crate::runtime::optim::{Gd, GdConfig, Optimizer};
use crate::runtime::train::{NonFiniteOrigin, ParamStore, StepReport, TrainError, Trainer};

fn gd() -> Optimizer {
    Optimizer::Gd(Gd::new(GdConfig::default()).unwrap())
}

/// One dense layer (`features → units`, linear) from the model input to the output.
fn dense_plan(features: usize, units: usize, bias: bool) -> ExecutionPlan {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[features]);
    let kernel = b.param("d.kernel", &[features, units], Init::GlorotUniform, true);
    let bias = bias.then(|| b.param("d.bias", &[units], Init::Uniform { limit: 0.3 }, true));
    let y = b.node(
        "d",
        Op::Dense {
            units,
            kernel,
            bias,
            activation: Activation::Linear,
        },
        &[x],
    );
    b.plan(y)
}

fn trainer(plan: ExecutionPlan, fused: bool) -> Trainer {
    let params = ParamStore::init(&plan, 4).unwrap();
    let t = Trainer::new(plan, params, 99).unwrap();
    if fused {
        t
    } else {
        t.without_dense_mse_fusion()
    }
}

fn step(t: &mut Trainer, x: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<StepReport, TrainError> {
    t.train_step(
        &[f32_input(x)],
        &Targets::Dense(y.view()),
        Loss::MeanSquaredError,
        &mut gd(),
        0.05,
        None,
    )
}

/// `got` within `1e-5` of `want` relative to `want`'s largest magnitude.
fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * scale,
            "{what}[{i}]: fused {g} vs unfused {w} (scale {scale})"
        );
    }
}

fn flat(a: &ndarray::ArrayViewD<'_, f32>) -> Vec<f32> {
    a.iter().copied().collect()
}

#[test]
fn fused_step_matches_the_unfused_forward_loss_and_backward() {
    let rows = 37;
    for features in [16, 5] {
        for units in [1, 3] {
            for bias in [true, false] {
                let case = format!("F={features} U={units} bias={bias}");
                let plan = dense_plan(features, units, bias);
                let (mut fused, mut plain) = (trainer(plan.clone(), true), trainer(plan, false));
                let x = noise(&[rows, features], 7 + features as u64, 2.0);
                let y = noise(&[rows, units], 8 + units as u64, 3.0);
                // A few steps: the parameters stay equal up to rounding.
                for s in 0..3 {
                    let a = step(&mut fused, &x, &y).unwrap();
                    let b = step(&mut plain, &x, &y).unwrap();
                    let what = format!("{case} step {s}");
                    close(&format!("{what} loss"), &[a.loss], &[b.loss]);
                    assert!(
                        (a.grad_norm - b.grad_norm).abs() <= 1e-5 * b.grad_norm,
                        "{what}"
                    );
                    close(
                        &format!("{what} predictions"),
                        &flat(&fused.output_view().unwrap()),
                        &flat(&plain.output_view().unwrap()),
                    );
                    let n_params = fused.params().tensors().len();
                    assert_eq!(n_params, if bias { 2 } else { 1 });
                    for i in 0..n_params {
                        close(
                            &format!("{what} gradient {i}"),
                            &flat(&fused.param_grad(i).unwrap()),
                            &flat(&plain.param_grad(i).unwrap()),
                        );
                    }
                }
                assert_eq!(fused.steps_done(), 3);
                // The fused step leaves a training forward behind: backward runs from it.
                let g = ArrayD::ones(vec![rows, units]);
                fused.backward(&[f32_input(&x)], &g.view()).unwrap();
                plain.backward(&[f32_input(&x)], &g.view()).unwrap();
                close(
                    &format!("{case} backward after the step"),
                    &flat(&fused.param_grad(0).unwrap()),
                    &flat(&plain.param_grad(0).unwrap()),
                );
            }
        }
    }
}

#[test]
fn fused_steps_are_deterministic_and_the_same_on_both_simd_paths() {
    let (x, y) = (noise(&[203, 16], 1, 1.0), noise(&[203, 1], 2, 1.0));
    let run = || {
        let mut t = trainer(dense_plan(16, 1, true), true);
        let losses: Vec<u32> = (0..5)
            .map(|_| step(&mut t, &x, &y).unwrap().loss.to_bits())
            .collect();
        let params: Vec<u32> = t
            .params()
            .tensors()
            .iter()
            .flat_map(|p| p.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
            .collect();
        (losses, params)
    };
    let first = run();
    assert_eq!(first, run());
    assert_eq!(first, baseline(run));
}

#[test]
fn input_gradients_turn_the_fusion_off() {
    let (x, y) = (noise(&[37, 5], 3, 1.0), noise(&[37, 3], 4, 1.0));
    let mut t = trainer(dense_plan(5, 3, true), true).with_input_gradients();
    let mut plain = trainer(dense_plan(5, 3, true), false).with_input_gradients();
    let a = step(&mut t, &x, &y).unwrap();
    let b = step(&mut plain, &x, &y).unwrap();
    assert_eq!(a.loss.to_bits(), b.loss.to_bits());
    assert_eq!(t.input_grad(0).unwrap(), plain.input_grad(0).unwrap());
}

#[test]
fn batches_the_fused_step_cannot_take_fail_as_unfused() {
    let x = noise(&[6, 5], 3, 1.0);
    let mut t = trainer(dense_plan(5, 1, true), true);
    let wrong = noise(&[6, 2], 4, 1.0);
    let err = step(&mut t, &x, &wrong).unwrap_err();
    assert!(
        matches!(err, TrainError::Loss(LossError::ShapeMismatch { .. })),
        "{err}"
    );
    let labels = ArrayD::from_shape_vec(vec![6], vec![0i32; 6]).unwrap();
    let err = t
        .train_step(
            &[f32_input(&x)],
            &Targets::Sparse(SparseLabels::I32(labels.view())),
            Loss::MeanSquaredError,
            &mut gd(),
            0.1,
            None,
        )
        .unwrap_err();
    assert!(
        matches!(err, TrainError::Loss(LossError::TargetKind { .. })),
        "{err}"
    );
    // A strided input runs unfused (and fits there).
    let wide = noise(&[6, 10], 5, 1.0);
    let strided = wide.slice(ndarray::s![.., ..;2]).into_dyn();
    let y = noise(&[6, 1], 6, 1.0);
    let r = t.train_step(
        &[crate::runtime::train::Input::F32(strided)],
        &Targets::Dense(y.view()),
        Loss::MeanSquaredError,
        &mut gd(),
        0.1,
        None,
    );
    let mut plain = trainer(dense_plan(5, 1, true), false);
    let strided = wide.slice(ndarray::s![.., ..;2]).into_dyn();
    let p = plain.train_step(
        &[crate::runtime::train::Input::F32(strided)],
        &Targets::Dense(y.view()),
        Loss::MeanSquaredError,
        &mut gd(),
        0.1,
        None,
    );
    assert_eq!(format!("{r:?}"), format!("{p:?}"));
    assert_eq!(t.steps_done(), 0);
}

#[test]
fn a_nan_input_stops_the_fused_step_before_the_gradients_change() {
    let x = noise(&[37, 16], 3, 1.0);
    let y = noise(&[37, 1], 4, 1.0);
    let mut t = trainer(dense_plan(16, 1, true), true);
    step(&mut t, &x, &y).unwrap();
    let (params, grad) = (t.params().clone(), t.param_grad(0).unwrap().to_owned());
    let mut bad = x.clone();
    bad[[30, 4]] = f32::NAN;
    let err = step(&mut t, &bad, &y).unwrap_err();
    let TrainError::NonFiniteLoss {
        step: 2, origin, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(origin, &Some(NonFiniteOrigin::Input("x".into())));
    assert_eq!(t.params(), &params);
    assert_eq!(t.param_grad(0).unwrap(), grad);
    assert_eq!(t.steps_done(), 1);
    step(&mut t, &x, &y).unwrap();
    assert_eq!(t.steps_done(), 2);
}
