//! The trainer's crop against its plain path: a conv whose output only a `valid` pool reads
//! computes and differentiates only the pixels the pool reaches (`train::setup::pool_crops`),
//! and gives the uncropped trainer's output and gradients bit for bit (on our GEMM kernel;
//! to f32 rounding on the matrixmultiply fallback, whose order of summation may change with
//! the row count), for odd sizes, strides, `same` padding, dilation, overlapping and average
//! pools, conv1d and stacked layers, on 1 and 2 threads.

use super::{distinct, f32_input, noise, trainer, window, Builder};
use crate::ir::{Activation, DType, Init, Op, Padding, ValueId, Window};
use crate::ops::conv::window_1d;
use crate::ops::types::Padding1d;
use crate::plan::ExecutionPlan;
use crate::runtime::kernels::simd_gemm;
use crate::runtime::train::context::StepState;
use crate::runtime::train::Trainer;

/// A conv2d node over `window` with a bias, then `act` as its own node (fused by the plan).
fn conv(
    b: &mut Builder,
    name: &str,
    x: ValueId,
    filters: usize,
    w: Window,
    act: Activation,
) -> ValueId {
    let y = b.conv_window(name, x, filters, w);
    if act == Activation::Linear {
        y
    } else {
        b.node(&format!("{name}_act"), Op::Activation(act), &[y])
    }
}

fn dilated(k: usize, dilation: usize, padding: Padding) -> Window {
    Window {
        dilation: [dilation, dilation],
        ..window(k, 1, padding)
    }
}

fn max_pool(b: &mut Builder, x: ValueId, size: usize, stride: usize) -> ValueId {
    let op = Op::MaxPool2d {
        window: window(size, stride, Padding::Valid),
    };
    b.node("mp", op, &[x])
}

/// A conv → pool pair (or a stack of them) with a dense head, the input's shape, and how
/// many conv steps the crop should take.
struct Case {
    name: &'static str,
    plan: ExecutionPlan,
    input: Vec<usize>,
    crops: usize,
}

fn head(mut b: Builder, name: &'static str, a: ValueId, input: &[usize], crops: usize) -> Case {
    let a = b.node("flat", Op::Flatten, &[a]);
    let a = b.dense("d", a, 3, Activation::Linear);
    Case {
        name,
        plan: b.plan(a),
        input: input.to_vec(),
        crops,
    }
}

fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    let relu = Activation::Relu;
    // 9 × 8 → 7 × 6, pooled 2 × 2 over 6 × 6: the last row unread.
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[9, 8, 3]);
    let a = conv(&mut b, "c", x, 4, window(3, 1, Padding::Valid), relu);
    let a = max_pool(&mut b, a, 2, 2);
    all.push(head(b, "odd rows", a, &[3, 9, 8, 3], 1));
    // Stride 2: 11 × 12 → 5 × 5, pooled over 4 × 4.
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[11, 12, 2]);
    let a = conv(&mut b, "c", x, 5, window(3, 2, Padding::Valid), relu);
    let a = max_pool(&mut b, a, 2, 2);
    all.push(head(b, "stride 2", a, &[2, 11, 12, 2], 1));
    // `same` padding: 7 × 9 → 7 × 9, pooled over 6 × 8 (dx by the direct back convolution).
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[7, 9, 2]);
    let a = conv(&mut b, "c", x, 4, window(3, 1, Padding::Same), relu);
    let a = max_pool(&mut b, a, 2, 2);
    all.push(head(b, "same padding", a, &[3, 7, 9, 2], 1));
    // Dilation 2: 10 × 9 → 6 × 5, pooled over 6 × 4; a linear conv (no relu through the pool).
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[10, 9, 3]);
    let a = conv(
        &mut b,
        "c",
        x,
        4,
        dilated(3, 2, Padding::Valid),
        Activation::Tanh,
    );
    let a = max_pool(&mut b, a, 2, 2);
    all.push(head(b, "dilation, tanh", a, &[2, 10, 9, 3], 1));
    // Overlapping 3 × 3 windows at stride 2: 10 × 10 → 8 × 8, read over 7 × 7.
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[10, 10, 2]);
    let a = conv(&mut b, "c", x, 3, window(3, 1, Padding::Valid), relu);
    let a = max_pool(&mut b, a, 3, 2);
    all.push(head(b, "3x3 pool", a, &[2, 10, 10, 2], 1));
    // An average pool: 9 × 9 → 7 × 7, read over 6 × 6.
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[9, 9, 2]);
    let a = conv(&mut b, "c", x, 3, window(3, 1, Padding::Valid), relu);
    let op = Op::AvgPool2d {
        window: window(2, 2, Padding::Valid),
    };
    let a = b.node("ap", op, &[a]);
    all.push(head(b, "average pool", a, &[2, 9, 9, 2], 1));
    // conv1d: 12 steps → 10, pooled by 3 over 9.
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[12, 2]);
    let kernel = b.param("c.kernel", &[3, 2, 4], Init::GlorotUniform, true);
    let op = Op::Conv1d {
        filters: 4,
        window: window_1d(3, 1, 1, Padding1d::Valid).unwrap(),
        kernel,
        bias: None,
        activation: Activation::Linear,
    };
    let a = b.node("c", op, &[x]);
    let a = b.node("c_act", Op::Activation(relu), &[a]);
    let w = crate::ops::pool::pool_window_1d(3, 3, Padding1d::Valid).unwrap();
    let a = b.node("mp", Op::MaxPool1d { window: w }, &[a]);
    all.push(head(b, "conv1d", a, &[3, 12, 2], 1));
    // The seed CNN's shape, smaller: two cropped convs, the second one's dx through the crop,
    // and a batch large enough for the convs to run one slice per thread.
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[16, 15, 4]);
    let a = conv(&mut b, "c1", x, 16, window(3, 1, Padding::Valid), relu);
    let a = b.node(
        "mp1",
        Op::MaxPool2d {
            window: window(2, 2, Padding::Valid),
        },
        &[a],
    );
    let a = conv(&mut b, "c2", a, 16, window(3, 1, Padding::Valid), relu);
    let a = b.node(
        "mp2",
        Op::MaxPool2d {
            window: window(2, 2, Padding::Valid),
        },
        &[a],
    );
    all.push(head(b, "stacked", a, &[16, 16, 15, 4], 2));
    all
}

/// The output, every parameter gradient and the input gradient after one forward and backward.
fn run(t: &mut Trainer, x: &ndarray::ArrayD<f32>) -> Vec<Vec<f32>> {
    let inputs = [f32_input(x)];
    let y = t.forward(&inputs, true).unwrap();
    let (shape, y) = (y.shape().to_vec(), y.iter().copied().collect());
    let w = noise(&shape, 3, 1.0);
    t.backward(&inputs, &w.view()).unwrap();
    let mut out = vec![y];
    out.extend(
        (0..t.plan().params.len()).map(|i| t.param_grad(i).unwrap().iter().copied().collect()),
    );
    out.push(t.input_grad(0).unwrap().iter().copied().collect());
    out
}

#[test]
fn cropped_training_gives_the_uncropped_gradients_bit_for_bit() {
    let exact = simd_gemm::available();
    for case in cases() {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let what = format!("{}, {threads} threads", case.name);
            let (fast, plain) = pool.install(|| {
                let mut fast = trainer(case.plan.clone(), 5).with_input_gradients();
                let mut plain = trainer(case.plan.clone(), 5).with_input_gradients();
                let mut crops = 0;
                for st in &mut plain.state {
                    if let StepState::Conv { crop, .. } = st {
                        crops += usize::from(crop.take().is_some());
                    }
                }
                assert_eq!(crops, case.crops, "{what}: the crop is taken");
                let x = distinct(&case.input, 4);
                (run(&mut fast, &x), run(&mut plain, &x))
            });
            assert_eq!(fast.len(), plain.len(), "{what}");
            for (i, (a, b)) in fast.iter().zip(&plain).enumerate() {
                assert!(a.iter().any(|&v| v != 0.0), "{what}: output {i} all zero");
                if exact {
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(a), bits(b), "{what}: output {i}");
                } else {
                    for (p, q) in a.iter().zip(b) {
                        assert!(
                            (p - q).abs() <= 1e-5 * q.abs().max(1.0),
                            "{what}: output {i}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn only_a_valid_pool_that_alone_reads_a_conv_crops_it() {
    let crops = |plan: &ExecutionPlan| {
        crate::runtime::train::setup::pool_crops(plan)
            .iter()
            .map(Option::is_some)
            .collect::<Vec<_>>()
    };
    // A `same` pool reads every pixel: no crop.
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[9, 9, 2]);
    let a = conv(
        &mut b,
        "c",
        x,
        3,
        window(3, 1, Padding::Valid),
        Activation::Relu,
    );
    let op = Op::MaxPool2d {
        window: window(2, 2, Padding::Same),
    };
    let a = b.node("mp", op, &[a]);
    let plan = head(b, "same pool", a, &[1, 9, 9, 2], 0).plan;
    assert!(crops(&plan).iter().all(|&c| !c), "{:?}", crops(&plan));
    // A conv read by the pool and by another step: no crop.
    let mut b = Builder::new();
    let x = b.input("x", DType::F32, &[9, 9, 2]);
    let c = conv(
        &mut b,
        "c",
        x,
        3,
        window(3, 1, Padding::Valid),
        Activation::Relu,
    );
    let m = max_pool(&mut b, c, 2, 2);
    let g1 = b.node("gap", Op::GlobalAvgPool2d, &[m]);
    let g2 = b.node("gap_c", Op::GlobalAvgPool2d, &[c]);
    let s = b.node("cat", Op::Concat { axis: -1 }, &[g1, g2]);
    let plan = b.plan(s);
    assert!(crops(&plan).iter().all(|&c| !c), "{:?}", crops(&plan));
    // The plain pair: the conv (step 0) is cropped, nothing else.
    let case = cases().swap_remove(0);
    let flags = crops(&case.plan);
    assert_eq!(flags.iter().filter(|&&c| c).count(), 1, "{flags:?}");
    assert!(flags[0], "{flags:?}");
}
