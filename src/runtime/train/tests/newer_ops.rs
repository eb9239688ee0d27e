//! Whole-plan gradients (central finite differences, as `gradients.rs`) through the layers of
//! issue 15: the newer activations fused into dense steps and as steps of their own; conv1d
//! (valid, causal, same; strides; dilation) and the 1-D pools, forward against direct sums in
//! the trainer and the interpreter, and backward; depthwise_conv2d through the trainer and the
//! interpreter.

use ndarray::{ArrayD, IxDyn};

use super::gradients::check;
use super::{distinct, f32_input, noise, trainer, window, Builder};
use crate::ir::{Activation, DType, Init, Op, Padding, ValueId, Window};
use crate::ops::conv::window_1d;
use crate::ops::types::Padding1d;
use crate::passes::{Mode, PassOptions};
use crate::plan::compile;
use crate::runtime::interp::{Interpreter, TensorRef};
use crate::runtime::weights::Weights;

#[test]
fn dense_with_the_newer_activations_fused_and_apart() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[6]);
    let a = b.dense("d1", x, 6, Activation::Elu { alpha: 0.7 });
    let a = b.dense("d2", a, 6, Activation::Selu);
    let a = b.dense("d3", a, 6, Activation::Softplus);
    let a = b.dense("d4", a, 6, Activation::Swish);
    let a = b.dense("d5", a, 6, Activation::Mish);
    let a = b.dense("d6", a, 5, Activation::HardSigmoid);
    let a = b.dense("d7", a, 3, Activation::Relu6);
    let plan = b.plan(a);
    // Elu, selu, softplus, hard_sigmoid and relu6 fused into their dense steps; swish and mish
    // (whose derivatives need the pre-activation) stayed steps of their own.
    let kinds: Vec<&str> = plan.steps.iter().map(|s| s.op.kind()).collect();
    assert_eq!(
        kinds,
        ["dense", "dense", "dense", "dense", "swish", "dense", "mish", "dense", "dense"]
    );
    assert!(plan.steps.iter().any(|s| matches!(
        s.op,
        Op::Dense {
            activation: Activation::Elu { .. },
            ..
        }
    )));
    check(plan, vec![noise(&[4, 6], 3, 2.0)], None, 1e-3);
}

/// A conv1d node (kernel `[k, in, filters]`, bias) with the IR window of `padding`.
fn conv1d(
    b: &mut Builder,
    name: &str,
    x: ValueId,
    filters: usize,
    geometry: (usize, usize, usize, Padding1d),
) -> ValueId {
    let (k, stride, dilation, padding) = geometry;
    let last = b.g.value(x).unwrap().fact.dim(-1).unwrap();
    let (kernel, bias) = b.kernel_and_bias(name, &[k, last, filters], filters);
    b.node(
        name,
        Op::Conv1d {
            filters,
            window: window_1d(k, stride, dilation, padding).unwrap(),
            kernel,
            bias: Some(bias),
            activation: Activation::Linear,
        },
        &[x],
    )
}

/// The output length and left padding of a 1-D window over `t` steps, by Keras's formulas
/// (written here independently of `ops::window`).
fn geometry_1d(t: usize, k: usize, s: usize, d: usize, padding: Padding1d) -> (usize, usize) {
    let span = d * (k - 1) + 1;
    match padding {
        Padding1d::Valid => ((t - span) / s + 1, 0),
        Padding1d::Causal => ((t - 1) / s + 1, span - 1),
        Padding1d::Same => {
            let out = t.div_ceil(s);
            let total = ((out - 1) * s + span).saturating_sub(t);
            (out, total / 2)
        }
    }
}

/// Direct conv1d: `y[n, o, f] = b[f] + Σ_{j, c} x[n, o·s + j·d − left, c] · w[j, c, f]`
/// (positions outside the sequence are zeros).
fn conv1d_reference(
    x: &ArrayD<f32>,
    w: &ArrayD<f32>,
    bias: &ArrayD<f32>,
    (s, d, padding): (usize, usize, Padding1d),
) -> ArrayD<f32> {
    let (n, t, c) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let (k, f) = (w.shape()[0], w.shape()[2]);
    let (out, left) = geometry_1d(t, k, s, d, padding);
    ArrayD::from_shape_fn(IxDyn(&[n, out, f]), |i| {
        let (b, o, ff) = (i[0], i[1], i[2]);
        let mut acc = f64::from(bias[[ff]]);
        for j in 0..k {
            let pos = (o * s + j * d) as isize - left as isize;
            if pos < 0 || pos >= t as isize {
                continue;
            }
            for cc in 0..c {
                acc += f64::from(x[[b, pos as usize, cc]]) * f64::from(w[[j, cc, ff]]);
            }
        }
        acc as f32
    })
}

/// Direct 1-D pooling; an average counts only the positions inside the sequence (Keras).
fn pool1d_reference(
    x: &ArrayD<f32>,
    max: bool,
    p: usize,
    s: usize,
    padding: Padding1d,
) -> ArrayD<f32> {
    let (n, t, c) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let (out, left) = geometry_1d(t, p, s, 1, padding);
    ArrayD::from_shape_fn(IxDyn(&[n, out, c]), |i| {
        let inside: Vec<f32> = (0..p)
            .map(|j| (i[1] * s + j) as isize - left as isize)
            .filter(|&q| q >= 0 && q < t as isize)
            .map(|q| x[[i[0], q as usize, i[2]]])
            .collect();
        if max {
            inside.iter().copied().fold(f32::NEG_INFINITY, f32::max)
        } else {
            inside.iter().sum::<f32>() / inside.len() as f32
        }
    })
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

const CASES: [(usize, usize, usize, Padding1d); 6] = [
    (3, 1, 1, Padding1d::Valid),
    (3, 2, 1, Padding1d::Valid),
    (3, 1, 2, Padding1d::Causal),
    (2, 2, 1, Padding1d::Causal),
    (4, 1, 1, Padding1d::Same),
    (3, 3, 1, Padding1d::Same),
];

#[test]
fn conv1d_forward_matches_the_direct_sum_in_training_and_inference() {
    for (case, geometry) in CASES.into_iter().enumerate() {
        let (k, s, d, padding) = geometry;
        let mut b = Builder::new();
        let x = b.input("x", DType::F32, &[11, 3]);
        let y = conv1d(&mut b, "c", x, 4, geometry);
        let graph_for_inference = {
            let mut g = b.g.clone();
            g.outputs.push(y);
            g
        };
        let plan = b.plan(y);
        let mut t = trainer(plan, case as u64);
        let input = noise(&[2, 11, 3], 40 + case as u64, 1.0);
        let w = t.params.tensors_mut()[0].clone();
        let bias = t.params.tensors_mut()[1].clone();
        let want = conv1d_reference(&input, &w, &bias, (s, d, padding));
        let got = t.forward(&[f32_input(&input)], true).unwrap().to_owned();
        assert_near(&format!("train k{k} s{s} d{d} {padding:?}"), &got, &want);
        // The interpreter, on the inference plan of the same graph with the same weights.
        let plan = compile(
            graph_for_inference,
            Mode::Infer,
            &PassOptions::default(),
            "t".into(),
        )
        .unwrap();
        let weights =
            Weights::from_named(&plan, vec![("c.kernel".into(), w), ("c.bias".into(), bias)])
                .unwrap();
        let mut interp = Interpreter::new(&plan, weights).unwrap();
        let got = interp
            .run(&[TensorRef::F32(input.view())])
            .unwrap()
            .remove(0);
        assert_near(&format!("infer k{k} s{s} d{d} {padding:?}"), &got, &want);
    }
}

#[test]
fn pool1d_forward_matches_the_direct_windows() {
    let input = noise(&[2, 9, 3], 50, 1.0);
    for (max, p, s, padding) in [
        (true, 2, 2, Padding1d::Valid),
        (false, 2, 2, Padding1d::Valid),
        (true, 3, 2, Padding1d::Same),
        (false, 3, 2, Padding1d::Same),
        (false, 4, 1, Padding1d::Same),
    ] {
        let mut b = Builder::new();
        let x = b.input("x", DType::F32, &[9, 3]);
        let window = crate::ops::pool::pool_window_1d(p, s, padding).unwrap();
        let op = if max {
            Op::MaxPool1d { window }
        } else {
            Op::AvgPool1d { window }
        };
        let y = b.node("p", op, &[x]);
        let mut t = trainer(b.plan(y), 1);
        let got = t.forward(&[f32_input(&input)], true).unwrap().to_owned();
        let want = pool1d_reference(&input, max, p, s, padding);
        assert_near(&format!("max {max} p{p} s{s} {padding:?}"), &got, &want);
    }
    // Global pools: the mean and the max over time.
    for (op, max) in [(Op::GlobalAvgPool1d, false), (Op::GlobalMaxPool1d, true)] {
        let mut b = Builder::new();
        let x = b.input("x", DType::F32, &[9, 3]);
        let y = b.node("g", op, &[x]);
        let mut t = trainer(b.plan(y), 1);
        let got = t.forward(&[f32_input(&input)], true).unwrap().to_owned();
        let want = pool1d_reference(&input, max, 9, 1, Padding1d::Valid)
            .into_shape_with_order(IxDyn(&[2, 3]))
            .unwrap();
        assert_near(&format!("global max {max}"), &got, &want);
    }
}

#[test]
fn conv1d_and_pool1d_gradients() {
    for geometry in CASES {
        let mut b = Builder::new();
        let x = b.input("x", DType::F32, &[10, 2]);
        let a = conv1d(&mut b, "c1", x, 3, geometry);
        let a = b.node("c1_act", Op::Activation(Activation::Tanh), &[a]);
        let a = conv1d(&mut b, "c2", a, 3, (2, 1, 1, Padding1d::Causal));
        let a = b.node("c2_act", Op::Activation(Activation::Tanh), &[a]);
        let window = crate::ops::pool::pool_window_1d(2, 1, Padding1d::Same).unwrap();
        let a = b.node("pool", Op::AvgPool1d { window }, &[a]);
        let a = b.node("gap", Op::GlobalAvgPool1d, &[a]);
        let a = b.dense("d", a, 2, Activation::Linear);
        check(b.plan(a), vec![noise(&[3, 10, 2], 7, 1.0)], None, 1e-3);
    }
}

#[test]
fn conv1d_relu_through_max_pool1d_gradients() {
    // A conv1d whose fused relu only a max pool reads: the pool applies the relu's derivative.
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[12, 2]);
    let a = conv1d(&mut b, "c", x, 3, (3, 1, 1, Padding1d::Causal));
    let a = b.node("c_act", Op::Activation(Activation::Relu), &[a]);
    let window = crate::ops::pool::pool_window_1d(2, 2, Padding1d::Valid).unwrap();
    let a = b.node("pool", Op::MaxPool1d { window }, &[a]);
    let a = b.node("gmp", Op::GlobalMaxPool1d, &[a]);
    let a = b.dense("d", a, 2, Activation::Linear);
    let plan = b.plan(a);
    assert_eq!(
        crate::runtime::train::setup::relu_through_pool(&plan),
        [true, true, false, false]
    );
    check(plan, vec![distinct(&[3, 12, 2], 5)], None, 1e-3);
}

/// A depthwise conv node (kernel `[k, k, in, multiplier]`, bias) over `window`.
fn depthwise(
    b: &mut Builder,
    name: &str,
    x: ValueId,
    multiplier: usize,
    window: Window,
) -> ValueId {
    let last = b.g.value(x).unwrap().fact.dim(-1).unwrap();
    let [kh, kw] = window.size;
    let kernel = b.param(
        &format!("{name}.kernel"),
        &[kh, kw, last, multiplier],
        Init::GlorotUniform,
        true,
    );
    let bias = b.param(
        &format!("{name}.bias"),
        &[last * multiplier],
        Init::Uniform { limit: 0.3 },
        true,
    );
    b.node(
        name,
        Op::DepthwiseConv2d {
            multiplier,
            window,
            kernel,
            bias: Some(bias),
            activation: Activation::Linear,
        },
        &[x],
    )
}

#[test]
fn depthwise_conv2d_gradients_with_a_fused_activation() {
    for (multiplier, stride, padding) in [(1, 1, Padding::Valid), (2, 2, Padding::Same)] {
        let mut b = Builder::new();
        let x = b.input("x", DType::F32, &[6, 5, 2]);
        let a = depthwise(&mut b, "dw", x, multiplier, window(3, stride, padding));
        let a = b.node("dw_act", Op::Activation(Activation::Softplus), &[a]);
        let a = b.node("gap", Op::GlobalAvgPool2d, &[a]);
        let a = b.dense("d", a, 2, Activation::Linear);
        let plan = b.plan(a);
        assert!(
            plan.pass_log.iter().any(|l| l == "dw + softplus fused"),
            "{:?}",
            plan.pass_log
        );
        check(plan, vec![noise(&[2, 6, 5, 2], 9, 1.0)], None, 1e-3);
    }
}

#[test]
fn depthwise_conv2d_inference_equals_training_forward() {
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[7, 7, 3]);
    let y = depthwise(&mut b, "dw", x, 2, window(3, 2, Padding::Same));
    let y = b.node("dw_act", Op::Activation(Activation::Relu6), &[y]);
    let mut g = b.g.clone();
    g.outputs.push(y);
    let mut t = trainer(b.plan(y), 3);
    let input = noise(&[2, 7, 7, 3], 60, 2.0);
    let want = t.forward(&[f32_input(&input)], true).unwrap().to_owned();
    let (w, bias) = (
        t.params.tensors_mut()[0].clone(),
        t.params.tensors_mut()[1].clone(),
    );
    let plan = compile(g, Mode::Infer, &PassOptions::default(), "t".into()).unwrap();
    let weights = Weights::from_named(
        &plan,
        vec![("dw.kernel".into(), w), ("dw.bias".into(), bias)],
    )
    .unwrap();
    let got = Interpreter::new(&plan, weights)
        .unwrap()
        .run(&[TensorRef::F32(input.view())])
        .unwrap()
        .remove(0);
    assert_eq!(got.shape(), [2, 4, 4, 6]);
    assert_near("depthwise inference", &got, &want);
    assert!(want.iter().any(|&v| v == 0.0) && want.iter().any(|&v| v > 0.0));
}
