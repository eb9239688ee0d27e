//! The activations of issue 15 (swish, elu, selu, softplus, hard_sigmoid, relu6, mish): values
//! by hand (from the definitions, evaluated in f64), derivatives at the kinks, backward against
//! central finite differences over a range that crosses every kink, and the three copies of
//! each function (kernel, interpreter in place, fused training step) giving the same bits.

use ndarray::{ArrayD, IxDyn};

use super::{arr, assert_close, check_gradients, data};
use crate::ir::Activation as Ir;
use crate::runtime::interp::elementwise::activation_in_place;
use crate::runtime::kernels::activation::{activation_backward, activation_forward, Activation};
use crate::runtime::train::{context, fused};

const NEWER: [Activation; 8] = [
    Activation::Swish,
    Activation::Elu { alpha: 1.0 },
    Activation::Elu { alpha: 0.5 },
    Activation::Selu,
    Activation::Softplus,
    Activation::HardSigmoid,
    Activation::Relu6,
    Activation::Mish,
];

fn forward(act: Activation, x: &[f32]) -> Vec<f32> {
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[x.len()]));
    activation_forward(act, arr(&[x.len()], x.to_vec()).view(), out.view_mut()).unwrap();
    out.into_raw_vec_and_offset().0
}

fn backward(act: Activation, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let n = x.len();
    let y = arr(&[n], forward(act, x));
    let mut dx = ArrayD::<f32>::zeros(IxDyn(&[n]));
    activation_backward(
        act,
        arr(&[n], x.to_vec()).view(),
        y.view(),
        arr(&[n], dy.to_vec()).view(),
        dx.view_mut(),
    )
    .unwrap();
    dx.into_raw_vec_and_offset().0
}

#[test]
fn newer_activations_by_hand() {
    // Expected values: the Keras definitions evaluated in f64 (Python's math module).
    let x = [-1.0, 0.0, 2.0, 1.0, -4.0, 7.0];
    let cases: [(Activation, [f64; 6]); 8] = [
        (
            Activation::Swish,
            [
                -0.268_941_421_369_995_1,
                0.0,
                1.761_594_155_955_764_6,
                0.731_058_578_630_004_9,
                -0.071_944_839_848_366_23,
                6.993_622_641_639_195,
            ],
        ),
        (
            Activation::Elu { alpha: 1.0 },
            [
                -0.632_120_558_828_557_7,
                0.0,
                2.0,
                1.0,
                -0.981_684_361_111_265_8,
                7.0,
            ],
        ),
        (
            Activation::Elu { alpha: 0.5 },
            [
                -0.316_060_279_414_278_8,
                0.0,
                2.0,
                1.0,
                -0.490_842_180_555_632_9,
                7.0,
            ],
        ),
        (
            Activation::Selu,
            [
                -1.111_330_737_812_562_5,
                0.0,
                2.101_401_974_710_961,
                1.050_700_987_355_480_5,
                -1.725_898_628_189_894_5,
                7.354_906_911_488_364,
            ],
        ),
        (
            Activation::Softplus,
            [
                0.313_261_687_518_222_86,
                std::f64::consts::LN_2,
                2.126_928_011_042_972_7,
                1.313_261_687_518_222_8,
                0.018_149_927_917_809_738,
                7.000_911_466_453_774,
            ],
        ),
        (
            Activation::HardSigmoid,
            [1.0 / 3.0, 0.5, 5.0 / 6.0, 2.0 / 3.0, 0.0, 1.0],
        ),
        (Activation::Relu6, [0.0, 0.0, 2.0, 1.0, 0.0, 6.0]),
        (
            Activation::Mish,
            [
                -0.303_401_461_374_108_95,
                0.0,
                1.943_958_959_533_994_6,
                0.865_098_388_267_310_3,
                -0.072_591_740_792_025_35,
                6.999_988_379_809_741,
            ],
        ),
    ];
    for (act, want) in cases {
        let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        assert_close(&format!("{act:?}"), &forward(act, &x), &want, 1e-6);
    }
}

#[test]
fn derivatives_at_the_kinks_follow_tensorflow() {
    // relu6' is 0 at 0 and at 6; hard_sigmoid' is 0 at ±3 and 1/6 inside; elu' and selu' at
    // 0 are the positive side's, 1 and λ (TensorFlow's EluGrad and SeluGrad).
    let x = [0.0, 6.0, 3.0, -3.0, 0.5];
    let dy = [1.0; 5];
    assert_eq!(
        backward(Activation::Relu6, &x, &dy),
        [0.0, 0.0, 1.0, 0.0, 1.0]
    );
    assert_close(
        "hard_sigmoid'",
        &backward(Activation::HardSigmoid, &x, &dy),
        &[1.0 / 6.0, 0.0, 0.0, 0.0, 1.0 / 6.0],
        1e-7,
    );
    assert_close(
        "elu'",
        &backward(Activation::Elu { alpha: 0.5 }, &[0.0, -1.0, 2.0], &[1.0; 3]),
        &[1.0, 0.5 * (-1.0f32).exp(), 1.0],
        1e-6,
    );
    assert_close(
        "selu'",
        &backward(Activation::Selu, &[0.0, -1.0], &[1.0; 2]),
        &[1.050_701, 1.758_099_3 * (-1.0f32).exp()],
        1e-6,
    );
    // softplus' = sigmoid, swish'(0) = 1/2, mish'(0) = tanh(ln 2) = 0.6.
    assert_close(
        "softplus'",
        &backward(Activation::Softplus, &[0.0, 2.0], &[1.0; 2]),
        &[0.5, 0.880_797_1],
        1e-6,
    );
    assert_close(
        "swish'",
        &backward(Activation::Swish, &[0.0], &[1.0]),
        &[0.5],
        1e-6,
    );
    assert_close(
        "mish'",
        &backward(Activation::Mish, &[0.0], &[1.0]),
        &[0.6],
        1e-6,
    );
}

#[test]
fn newer_activation_backward_matches_finite_differences() {
    // Inputs over ±8, nudged away from every kink (0, ±3, 6) by more than the step.
    let kinks = [0.0f32, 3.0, -3.0, 6.0];
    let x: Vec<f32> = data(48, 21, 8.0)
        .iter()
        .map(|&v| {
            if kinks.iter().any(|k| (v - k).abs() < 0.05) {
                v + 0.1
            } else {
                v
            }
        })
        .collect();
    let w = data(48, 22, 1.0);
    for act in NEWER {
        let analytic = backward(act, &x, &w);
        check_gradients(
            &format!("{act:?}"),
            std::slice::from_ref(&x),
            &w,
            &[analytic],
            |ins| forward(act, &ins[0]),
        );
    }
}

/// The IR activation of a kernel one (the newer ones only).
fn ir(act: Activation) -> Ir {
    match act {
        Activation::Swish => Ir::Swish,
        Activation::Elu { alpha } => Ir::Elu { alpha },
        Activation::Selu => Ir::Selu,
        Activation::Softplus => Ir::Softplus,
        Activation::HardSigmoid => Ir::HardSigmoid,
        Activation::Relu6 => Ir::Relu6,
        Activation::Mish => Ir::Mish,
        other => panic!("not a newer activation: {other:?}"),
    }
}

#[test]
fn kernel_interpreter_and_fused_paths_give_the_same_bits() {
    let x = data(1000, 23, 10.0);
    let dy = data(1000, 24, 1.0);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for act in NEWER {
        let ir_act = ir(act);
        assert_eq!(context::activation(ir_act, 1), act);
        let kernel = forward(act, &x);
        let mut in_place = x.clone();
        activation_in_place(ir_act, &mut in_place, 10);
        assert_eq!(bits(&in_place), bits(&kernel), "{act:?} interpreter");
        // The fusable ones: the fused step's forward and derivative-from-output.
        assert_eq!(
            fused::supported(ir_act),
            !matches!(act, Activation::Swish | Activation::Mish),
            "{act:?}"
        );
        assert_eq!(fused::supported(ir_act), ir_act.is_fusable(), "{act:?}");
        if !fused::supported(ir_act) {
            continue;
        }
        let mut out = arr(&[1000], x.clone());
        fused::apply(ir_act, &mut out.view_mut());
        assert_eq!(
            bits(out.as_slice().unwrap()),
            bits(&kernel),
            "{act:?} fused"
        );
        let unfused = backward(act, &x, &dy);
        let mut d = arr(&[1000], dy.clone());
        fused::differentiate(ir_act, &out.view(), &mut d.view_mut());
        assert_eq!(
            bits(d.as_slice().unwrap()),
            bits(&unfused),
            "{act:?} fused'"
        );
    }
}
