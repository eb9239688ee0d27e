//! Whole-plan gradients (central finite differences, as `gradients.rs`) through
//! conv2d_transpose (valid, same, a kernel smaller than its stride), separable_conv2d (depth
//! multipliers, strides, a fused activation) and upsampling2d (nearest, bilinear); and the
//! interpreter's output of each equal to the trainer's forward on the same weights.

use ndarray::{ArrayD, IxDyn};

use super::gradients::check;
use super::{f32_input, noise, trainer, window, Builder};
use crate::ir::{Activation, DType, Init, Op, Padding, ValueId, Window};
use crate::ops::upsample::Interpolation;
use crate::passes::{Mode, PassOptions};
use crate::plan::compile;
use crate::runtime::interp::{Interpreter, TensorRef};
use crate::runtime::weights::Weights;

/// A conv2d_transpose node (kernel `[kh, kw, filters, in]`, bias).
fn transpose(b: &mut Builder, name: &str, x: ValueId, filters: usize, window: Window) -> ValueId {
    let last = b.g.value(x).unwrap().fact.dim(-1).unwrap();
    let [kh, kw] = window.size;
    let (kernel, bias) = b.kernel_and_bias(name, &[kh, kw, filters, last], filters);
    b.node(
        name,
        Op::Conv2dTranspose {
            filters,
            window,
            kernel,
            bias: Some(bias),
            activation: Activation::Linear,
        },
        &[x],
    )
}

/// A separable_conv2d node (depthwise `[k, k, in, multiplier]`, pointwise `[1, 1, in·m,
/// filters]`, bias).
fn separable(
    b: &mut Builder,
    name: &str,
    x: ValueId,
    filters: usize,
    multiplier: usize,
    window: Window,
) -> ValueId {
    let last = b.g.value(x).unwrap().fact.dim(-1).unwrap();
    let [kh, kw] = window.size;
    let depthwise_kernel = b.param(
        &format!("{name}.depthwise_kernel"),
        &[kh, kw, last, multiplier],
        Init::GlorotUniform,
        true,
    );
    let pointwise_kernel = b.param(
        &format!("{name}.pointwise_kernel"),
        &[1, 1, last * multiplier, filters],
        Init::GlorotUniform,
        true,
    );
    let bias = b.param(
        &format!("{name}.bias"),
        &[filters],
        Init::Uniform { limit: 0.3 },
        true,
    );
    b.node(
        name,
        Op::SeparableConv2d {
            filters,
            multiplier,
            window,
            depthwise_kernel,
            pointwise_kernel,
            bias: Some(bias),
            activation: Activation::Linear,
        },
        &[x],
    )
}

fn upsampling(b: &mut Builder, x: ValueId, size: [usize; 2], bilinear: bool) -> ValueId {
    let interpolation = if bilinear {
        Interpolation::Bilinear
    } else {
        Interpolation::Nearest
    };
    b.node(
        "up",
        Op::UpSampling2d {
            size,
            interpolation,
        },
        &[x],
    )
}

fn transposed_window(kh: usize, kw: usize, sh: usize, sw: usize, same: bool) -> Window {
    Window {
        size: [kh, kw],
        strides: [sh, sw],
        dilation: [1, 1],
        padding: if same { Padding::Same } else { Padding::Valid },
    }
}

#[test]
fn conv2d_transpose_gradients_with_a_fused_activation() {
    for (kh, kw, sh, sw, same) in [
        (3, 3, 2, 2, false),
        (3, 2, 2, 1, true),
        (2, 2, 3, 3, true),
        (1, 3, 1, 2, false),
    ] {
        let mut b = Builder::new();
        let x = b.input("x", DType::F32, &[3, 4, 2]);
        let a = transpose(&mut b, "ct", x, 3, transposed_window(kh, kw, sh, sw, same));
        let a = b.node("ct_act", Op::Activation(Activation::Tanh), &[a]);
        let a = b.node("gap", Op::GlobalAvgPool2d, &[a]);
        let a = b.dense("d", a, 2, Activation::Linear);
        let plan = b.plan(a);
        assert!(
            plan.pass_log.iter().any(|l| l == "ct + tanh fused"),
            "{:?}",
            plan.pass_log
        );
        check(plan, vec![noise(&[2, 3, 4, 2], 11, 1.0)], None, 1e-3);
    }
}

#[test]
fn separable_conv2d_gradients_with_a_fused_activation() {
    for (multiplier, stride, padding) in [(1, 1, Padding::Valid), (2, 2, Padding::Same)] {
        let mut b = Builder::new();
        let x = b.input("x", DType::F32, &[6, 5, 2]);
        let a = separable(&mut b, "sep", x, 3, multiplier, window(3, stride, padding));
        let a = b.node("sep_act", Op::Activation(Activation::Softplus), &[a]);
        let a = b.node("gap", Op::GlobalAvgPool2d, &[a]);
        let a = b.dense("d", a, 2, Activation::Linear);
        let plan = b.plan(a);
        assert!(
            plan.pass_log.iter().any(|l| l == "sep + softplus fused"),
            "{:?}",
            plan.pass_log
        );
        check(plan, vec![noise(&[2, 6, 5, 2], 9, 1.0)], None, 1e-3);
    }
}

#[test]
fn upsampling2d_gradients_nearest_and_bilinear() {
    for (size, bilinear) in [([2, 2], false), ([2, 3], true), ([3, 1], true)] {
        let mut b = Builder::new();
        let x = b.input("x", DType::F32, &[3, 2, 2]);
        let a = upsampling(&mut b, x, size, bilinear);
        let a = b.node("flat", Op::Flatten, &[a]);
        let a = b.dense("d", a, 2, Activation::Tanh);
        let plan = b.plan(a);
        check(plan, vec![noise(&[2, 3, 2, 2], 4, 1.0)], None, 1e-3);
    }
}

fn assert_near(what: &str, got: &ArrayD<f32>, want: &ArrayD<f32>) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{what}: {g} vs {w}"
        );
    }
}

/// The interpreter's output of `b`'s graph with output `y` against the trainer's forward on
/// the same (fresh) weights.
fn inference_equals_training_forward(b: Builder, y: ValueId, input: &ArrayD<f32>) -> ArrayD<f32> {
    let mut g = b.g.clone();
    g.outputs.push(y);
    let mut t = trainer(b.plan(y), 3);
    let want = t.forward(&[f32_input(input)], true).unwrap().to_owned();
    let names: Vec<String> = t.plan().params.iter().map(|p| p.name.clone()).collect();
    let tensors = names
        .into_iter()
        .zip(t.params.tensors_mut().iter().cloned())
        .collect();
    let plan = compile(g, Mode::Infer, &PassOptions::default(), "t".into()).unwrap();
    let weights = Weights::from_named(&plan, tensors).unwrap();
    let got = Interpreter::new(&plan, weights)
        .unwrap()
        .run(&[TensorRef::F32(input.view())])
        .unwrap()
        .remove(0);
    assert_near("inference", &got, &want);
    got
}

#[test]
fn the_new_layers_infer_as_they_train() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[5, 5, 3]);
    let y = separable(&mut b, "sep", x, 4, 2, window(3, 2, Padding::Same));
    let y = b.node("sep_act", Op::Activation(Activation::Relu), &[y]);
    let y = transpose(&mut b, "ct", y, 2, transposed_window(3, 3, 2, 2, true));
    let y = b.node("ct_act", Op::Activation(Activation::Sigmoid), &[y]);
    let y = upsampling(&mut b, y, [2, 1], true);
    let input = noise(&[2, 5, 5, 3], 60, 2.0);
    let got = inference_equals_training_forward(b, y, &input);
    assert_eq!(got.shape(), [2, 12, 6, 2]);
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[2, 3, 2]);
    let y = upsampling(&mut b, x, [2, 2], false);
    let got = inference_equals_training_forward(
        b,
        y,
        &input
            .slice_move(ndarray::s![.., 0..2, 0..3, 0..2])
            .to_owned()
            .into_dyn(),
    );
    assert_eq!(got.shape(), [2, 4, 6, 2]);
    assert_eq!(
        got[IxDyn(&[1, 3, 5, 1])].to_bits(),
        got[IxDyn(&[1, 2, 4, 1])].to_bits()
    );
}
