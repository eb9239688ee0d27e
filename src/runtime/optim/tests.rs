//! Optimizer tests: trajectories against the independent numpy reference in
//! `tests/fixtures/optim/` (made by `make_fixtures.py` there), checkpoint round trips that must
//! continue bit-for-bit, and refused inputs that must leave everything untouched.

use ndarray::{ArrayD, IxDyn};
use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    kind: String,
    hyper: serde_json::Value,
    lrs: Vec<f32>,
    shapes: Vec<Vec<usize>>,
    initial: Vec<Vec<f64>>,
    grads: Vec<Vec<Vec<f64>>>,
    expected: Vec<Vec<Vec<f64>>>,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/optim/optimizer_trajectories.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tensors(shapes: &[Vec<usize>], values: &[Vec<f64>]) -> Vec<ArrayD<f32>> {
    shapes
        .iter()
        .zip(values)
        .map(|(s, v)| {
            ArrayD::from_shape_vec(IxDyn(s), v.iter().map(|&x| x as f32).collect()).unwrap()
        })
        .collect()
}

fn build(case: &Case) -> Optimizer {
    let h = case.hyper.clone();
    match case.kind.as_str() {
        "gd" => Optimizer::Gd(Gd::new(serde_json::from_value(h).unwrap()).unwrap()),
        "sgd" => Optimizer::Sgd(Sgd::new(serde_json::from_value(h).unwrap()).unwrap()),
        "adam" => Optimizer::Adam(Adam::new(serde_json::from_value(h).unwrap()).unwrap()),
        "rmsprop" => Optimizer::RmsProp(RmsProp::new(serde_json::from_value(h).unwrap()).unwrap()),
        other => panic!("unknown optimizer kind {other}"),
    }
}

fn step(opt: &mut Optimizer, params: &mut [ArrayD<f32>], grads: &[ArrayD<f32>], lr: f32) {
    let mut views: Vec<_> = params.iter_mut().map(|p| p.view_mut()).collect();
    let grad_views: Vec<_> = grads.iter().map(|g| g.view()).collect();
    opt.step(&mut views, &grad_views, lr).unwrap();
}

#[test]
fn trajectories_match_numpy_reference() {
    let fixture = fixture();
    assert_eq!(fixture.cases.len(), 16);
    for (index, case) in fixture.cases.iter().enumerate() {
        let mut opt = build(case);
        let mut params = tensors(&case.shapes, &case.initial);
        let mut moved = 0.0_f64;
        for (t, ((grads, expected), &lr)) in case
            .grads
            .iter()
            .zip(&case.expected)
            .zip(&case.lrs)
            .enumerate()
        {
            let grads = tensors(&case.shapes, grads);
            step(&mut opt, &mut params, &grads, lr);
            for (p, e) in params.iter().zip(expected) {
                for (&got, &want) in p.iter().zip(e) {
                    let error = (f64::from(got) - want).abs();
                    assert!(
                        error <= 2e-6 + 2e-6 * want.abs(),
                        "case {index} ({} {}), step {t}: {got} vs {want}",
                        case.kind,
                        case.hyper
                    );
                }
            }
        }
        for (p, start) in params.iter().zip(&case.initial) {
            for (&now, &then) in p.iter().zip(start) {
                moved += (f64::from(now) - then).abs();
            }
        }
        assert!(moved > 1e-3, "case {index} did not move the parameters");
    }
}

/// Runs `steps` steps of the fixture's first problem with `opt`.
fn run(
    opt: &mut Optimizer,
    params: &mut [ArrayD<f32>],
    case: &Case,
    steps: std::ops::Range<usize>,
) {
    for t in steps {
        let grads = tensors(&case.shapes, &case.grads[t]);
        step(opt, params, &grads, case.lrs[t]);
    }
}

#[test]
fn restored_state_continues_bit_for_bit() {
    let fixture = fixture();
    for case in &fixture.cases {
        let total = case.grads.len();
        let mut straight = build(case);
        let mut straight_params = tensors(&case.shapes, &case.initial);
        run(&mut straight, &mut straight_params, case, 0..total);

        for format in ["json", "ron"] {
            let mut first = build(case);
            let mut params = tensors(&case.shapes, &case.initial);
            run(&mut first, &mut params, case, 0..3);
            let mut restored: Optimizer = if format == "json" {
                serde_json::from_str(&serde_json::to_string(&first).unwrap()).unwrap()
            } else {
                ron::from_str(&ron::to_string(&first).unwrap()).unwrap()
            };
            assert_eq!(restored, first, "{format}");
            restored.validate().unwrap();
            run(&mut restored, &mut params, case, 3..total);
            for (a, b) in params.iter().zip(&straight_params) {
                let a_bits: Vec<u32> = a.iter().map(|x| x.to_bits()).collect();
                let b_bits: Vec<u32> = b.iter().map(|x| x.to_bits()).collect();
                assert_eq!(a_bits, b_bits, "{} {format}", case.kind);
            }
        }
    }
}

fn adam_with_state() -> (Optimizer, Vec<ArrayD<f32>>) {
    let mut opt = Optimizer::Adam(Adam::new(AdamConfig::default()).unwrap());
    let mut params = vec![ArrayD::from_elem(IxDyn(&[2, 2]), 1.0_f32)];
    let grads = vec![ArrayD::from_elem(IxDyn(&[2, 2]), 0.5_f32)];
    step(&mut opt, &mut params, &grads, 0.1);
    (opt, params)
}

#[test]
fn refused_steps_touch_nothing() {
    let (mut opt, mut params) = adam_with_state();
    let before_opt = opt.clone();
    let before_params = params.clone();
    let mut views: Vec<_> = params.iter_mut().map(|p| p.view_mut()).collect();
    let good = ArrayD::from_elem(IxDyn(&[2, 2]), 0.5_f32);
    let wrong = ArrayD::from_elem(IxDyn(&[4]), 0.5_f32);

    let err = opt.step(&mut views, &[], 0.1).unwrap_err();
    assert_eq!(
        err,
        OptimError::CountMismatch {
            params: 1,
            grads: 0
        }
    );
    let err = opt.step(&mut views, &[wrong.view()], 0.1).unwrap_err();
    assert!(
        matches!(err, OptimError::GradShape { index: 0, .. }),
        "{err}"
    );
    for lr in [-0.1, f32::NAN, f32::INFINITY] {
        let err = opt.step(&mut views, &[good.view()], lr).unwrap_err();
        assert!(
            matches!(err, OptimError::Hyperparameter(ref h) if h.name == "lr"),
            "{err}"
        );
    }
    // state made for a [2, 2] parameter, now given a [4] one (checkpoint of another model)
    let mut other = [ArrayD::from_elem(IxDyn(&[4]), 1.0_f32)];
    let mut other_views: Vec<_> = other.iter_mut().map(|p| p.view_mut()).collect();
    let err = opt
        .step(&mut other_views, &[wrong.view()], 0.1)
        .unwrap_err();
    assert!(
        matches!(
            err,
            OptimError::StateShape {
                slot: "m",
                index: 0,
                ..
            }
        ),
        "{err}"
    );
    let err = opt.step(&mut [], &[], 0.1).unwrap_err();
    assert_eq!(
        err,
        OptimError::StateCount {
            state: 1,
            params: 0
        }
    );
    drop(views);
    assert_eq!(opt, before_opt);
    assert_eq!(params, before_params);
    assert_eq!(other[0], ArrayD::from_elem(IxDyn(&[4]), 1.0_f32));
}

#[test]
fn zero_learning_rate_leaves_parameters() {
    let (mut opt, mut params) = adam_with_state();
    let before = params.clone();
    step(
        &mut opt,
        &mut params,
        &[ArrayD::from_elem(IxDyn(&[2, 2]), 3.0)],
        0.0,
    );
    assert_eq!(params, before);
}

#[test]
fn constructors_refuse_out_of_range_hyperparameters() {
    let name = |r: Result<(), InvalidHyperparameter>| r.unwrap_err().name;
    let sgd = |c: SgdConfig| Sgd::new(c).map(drop);
    assert_eq!(
        name(sgd(SgdConfig {
            momentum: 1.0,
            ..SgdConfig::default()
        })),
        "momentum"
    );
    assert_eq!(
        name(sgd(SgdConfig {
            momentum: -0.1,
            ..SgdConfig::default()
        })),
        "momentum"
    );
    assert_eq!(
        name(sgd(SgdConfig {
            momentum: f32::NAN,
            ..SgdConfig::default()
        })),
        "momentum"
    );
    assert_eq!(
        name(sgd(SgdConfig {
            nesterov: true,
            ..SgdConfig::default()
        })),
        "momentum"
    );
    assert_eq!(
        name(sgd(SgdConfig {
            weight_decay: -1.0,
            ..SgdConfig::default()
        })),
        "weight_decay"
    );
    assert_eq!(
        name(
            Gd::new(GdConfig {
                weight_decay: f32::INFINITY
            })
            .map(drop)
        ),
        "weight_decay"
    );
    let adam = |c: AdamConfig| Adam::new(c).map(drop);
    for (config, field) in [
        (
            AdamConfig {
                beta1: 0.0,
                ..AdamConfig::default()
            },
            "beta1",
        ),
        (
            AdamConfig {
                beta1: 1.0,
                ..AdamConfig::default()
            },
            "beta1",
        ),
        (
            AdamConfig {
                beta2: 1.0,
                ..AdamConfig::default()
            },
            "beta2",
        ),
        (
            AdamConfig {
                beta2: f32::NAN,
                ..AdamConfig::default()
            },
            "beta2",
        ),
        (
            AdamConfig {
                epsilon: 0.0,
                ..AdamConfig::default()
            },
            "epsilon",
        ),
        (
            AdamConfig {
                weight_decay: -0.01,
                ..AdamConfig::adamw()
            },
            "weight_decay",
        ),
    ] {
        assert_eq!(name(adam(config)), field);
    }
    let rms = |c: RmsPropConfig| RmsProp::new(c).map(drop);
    for (config, field) in [
        (
            RmsPropConfig {
                rho: 1.0,
                ..RmsPropConfig::default()
            },
            "rho",
        ),
        (
            RmsPropConfig {
                epsilon: -1e-7,
                ..RmsPropConfig::default()
            },
            "epsilon",
        ),
        (
            RmsPropConfig {
                momentum: 1.0,
                ..RmsPropConfig::default()
            },
            "momentum",
        ),
    ] {
        assert_eq!(name(rms(config)), field);
    }
    assert!(Adam::new(AdamConfig::adamw()).is_ok());
    assert!(RmsProp::new(RmsPropConfig::default()).is_ok());
}

#[test]
fn hand_edited_checkpoint_is_refused() {
    let (opt, mut params) = adam_with_state();
    let text = serde_json::to_string(&opt).unwrap();
    let edited = text.replace("\"beta1\":0.9", "\"beta1\":1.5");
    assert_ne!(edited, text);
    let mut tampered: Optimizer = serde_json::from_str(&edited).unwrap();
    assert_eq!(tampered.validate().unwrap_err().name, "beta1");
    let before = params.clone();
    let mut views: Vec<_> = params.iter_mut().map(|p| p.view_mut()).collect();
    let grads = ArrayD::from_elem(IxDyn(&[2, 2]), 0.5_f32);
    assert!(tampered.step(&mut views, &[grads.view()], 0.1).is_err());
    drop(views);
    assert_eq!(params, before);
}

#[test]
fn strided_views_update_like_contiguous_ones() {
    let mut contiguous = vec![ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| {
        (i[0] * 2 + i[1]) as f32
    })];
    let mut transposed_store = ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| (i[1] * 2 + i[0]) as f32);
    let grads = ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| {
        0.1 * (i[0] as f32) - 0.2 * (i[1] as f32)
    });
    let config = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.01,
    };
    let mut a = Optimizer::Sgd(Sgd::new(config).unwrap());
    let mut b = a.clone();
    for _ in 0..3 {
        step(&mut a, &mut contiguous, std::slice::from_ref(&grads), 0.1);
        let mut view = vec![transposed_store.view_mut().reversed_axes()];
        b.step(&mut view, &[grads.view()], 0.1).unwrap();
    }
    assert_eq!(contiguous[0], transposed_store.t());
}
