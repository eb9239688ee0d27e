//! Interpreter tests: hand-computed outputs, optimized against unoptimized plans, memory and
//! buffers, inputs and errors, thread counts and fused steps; the weights files and plan errors
//! it loads are in `weights.rs`, token-id models (embedding + recurrent, folded or not) in
//! `tokens.rs`.

use super::*;
use crate::ir::{Graph, ParamSource};
use crate::passes::testing::chain;
use crate::passes::{Mode, PassOptions};
use crate::plan::compile;
use crate::runtime::weights::{
    init_weights, save_weights, weights_from_bytes, weights_to_bytes, WeightsError,
};
use ndarray::{arr2, Array, ArrayD, IxDyn};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::fmt::Write;

mod keras_convs;
mod pool;
mod tokens;
mod weights;

fn compile_with(g: Graph, optimize: bool) -> ExecutionPlan {
    let options = PassOptions {
        no_optimize: !optimize,
        ..PassOptions::default()
    };
    compile(g, Mode::Infer, &options, "test".into()).unwrap()
}

fn uniform(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * ((rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32)
}

/// Random stored weights (variances in [0.5, 1.5], everything else in [-0.5, 0.5]).
fn random_weights(plan: &ExecutionPlan, seed: u64) -> Weights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tensors = plan
        .params
        .iter()
        .filter(|p| p.source == ParamSource::Stored)
        .map(|p| {
            let (lo, hi) = if p.name.ends_with("variance") {
                (0.5, 1.5)
            } else {
                (-0.5, 0.5)
            };
            let data = (0..p.elements())
                .map(|_| uniform(&mut rng, lo, hi))
                .collect();
            (
                p.name.clone(),
                ArrayD::from_shape_vec(IxDyn(&p.shape), data).unwrap(),
            )
        })
        .collect();
    Weights::from_named(plan, tensors).unwrap()
}

fn random_input(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = shape.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(shape),
        (0..n).map(|_| uniform(&mut rng, -1.0, 1.0)).collect(),
    )
    .unwrap()
}

/// Runs `g` compiled with and without optimizations on the same random weights and input and
/// returns the max relative error `|a - b| / max(|b|, 1e-3)` of the optimized output.
fn optimized_vs_unoptimized(g: &Graph, input_shape: &[usize]) -> (f32, ExecutionPlan) {
    let opt = compile_with(g.clone(), true);
    let raw = compile_with(g.clone(), false);
    let w_raw = random_weights(&raw, 7);
    // The optimized plan reads the same stored tensors; its derived ones come from recipes.
    let stored: Vec<(String, ArrayD<f32>)> = w_raw
        .entries()
        .iter()
        .filter(|e| e.stored)
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    let w_opt = Weights::from_named(&opt, stored).unwrap();
    let x = random_input(input_shape, 3);
    let a = Interpreter::new(&opt, w_opt)
        .unwrap()
        .run(&[TensorRef::F32(x.view())])
        .unwrap();
    let b = Interpreter::new(&raw, w_raw)
        .unwrap()
        .run(&[TensorRef::F32(x.view())])
        .unwrap();
    assert_eq!(a[0].shape(), b[0].shape());
    let err = a[0]
        .iter()
        .zip(b[0].iter())
        .map(|(p, q)| (p - q).abs() / q.abs().max(1e-3))
        .fold(0.0f32, f32::max);
    (err, opt)
}

#[test]
fn dense_relu_matches_hand_computation() {
    let g = chain(&["in:2", "dense:2", "relu"]);
    let plan = compile_with(g, true);
    let w = Weights::from_named(
        &plan,
        vec![
            (
                "dense.kernel".into(),
                arr2(&[[1.0f32, -1.0], [2.0, 0.5]]).into_dyn(),
            ),
            (
                "dense.bias".into(),
                ndarray::arr1(&[0.5f32, -4.0]).into_dyn(),
            ),
        ],
    )
    .unwrap();
    let mut it = Interpreter::new(&plan, w).unwrap();
    let x = arr2(&[[1.0f32, 2.0], [-1.0, 0.0]]).into_dyn();
    let y = it.run(&[TensorRef::F32(x.view())]).unwrap();
    // Row 0: [1+4+0.5, -1+1-4] = [5.5, -4] → relu [5.5, 0]; row 1: [-1+0.5, 1-4] → [0, 0].
    assert_eq!(y[0], arr2(&[[5.5f32, 0.0], [0.0, 0.0]]).into_dyn());
}

#[test]
fn conv_pool_softmax_matches_hand_computation() {
    // 3x3x1 input, one 3x3 filter of ones, bias 1 → a single pixel holding sum + 1.
    let g = chain(&["in:4,4,1", "conv:1", "maxpool:2", "flatten", "softmax"]);
    let plan = compile_with(g, true);
    let w = Weights::from_named(
        &plan,
        vec![
            (
                "conv.kernel".into(),
                ArrayD::from_elem(IxDyn(&[3, 3, 1, 1]), 1.0),
            ),
            ("conv.bias".into(), ArrayD::from_elem(IxDyn(&[1]), 1.0)),
        ],
    )
    .unwrap();
    let x = Array::from_shape_fn((1, 4, 4, 1), |(_, i, j, _)| (i * 4 + j) as f32).into_dyn();
    let y = Interpreter::new(&plan, w)
        .unwrap()
        .run(&[TensorRef::F32(x.view())])
        .unwrap();
    // Windows at (0,0),(0,1),(1,0),(1,1): sums 45, 54, 81, 90 (+1); the pool keeps 91; softmax
    // of a single value is 1.
    assert_eq!(y[0].shape(), &[1, 1]);
    assert!((y[0][[0, 0]] - 1.0).abs() < 1e-7);
    let g = chain(&["in:4,4,1", "conv:1", "maxpool:2", "flatten"]);
    let plan = compile_with(g, true);
    let w = Weights::from_named(
        &plan,
        vec![
            (
                "conv.kernel".into(),
                ArrayD::from_elem(IxDyn(&[3, 3, 1, 1]), 1.0),
            ),
            ("conv.bias".into(), ArrayD::from_elem(IxDyn(&[1]), 1.0)),
        ],
    )
    .unwrap();
    let y = Interpreter::new(&plan, w)
        .unwrap()
        .run(&[TensorRef::F32(x.view())])
        .unwrap();
    assert!((y[0][[0, 0]] - 91.0).abs() < 1e-5);
}

#[test]
fn optimized_plans_agree_with_unoptimized_plans() {
    // Batch-norm folding: the folded kernel is computed once in f32, so a few ulps differ.
    let (err, plan) = optimized_vs_unoptimized(
        &chain(&[
            "in:8,8,3", "conv:4", "bn", "relu", "flatten", "dense:5", "bn", "softmax",
        ]),
        &[3, 8, 8, 3],
    );
    assert!(
        plan.pass_log.iter().any(|l| l.contains("folded")),
        "{:?}",
        plan.pass_log
    );
    eprintln!("batch-norm folding: max relative error {err:e}");
    assert!(err < 1e-5, "batch-norm folding error {err}");
    // Fusion, dropout removal, views and in-place steps only: the same arithmetic.
    let (err, plan) = optimized_vs_unoptimized(
        &chain(&[
            "in:10,10,2",
            "conv:4",
            "relu",
            "dropout",
            "maxpool:2",
            "conv_same:3",
            "tanh",
            "flatten",
            "dense:6",
            "sigmoid",
            "dense:4",
            "softmax",
        ]),
        &[2, 10, 10, 2],
    );
    assert!(plan.memory.in_place > 0 && plan.memory.views > 0);
    eprintln!("fusion/in-place/views: max relative error {err:e}");
    assert!(err < 1e-6, "fusion error {err}");
    // An input normalization folded into a dense layer.
    let (err, plan) =
        optimized_vs_unoptimized(&chain(&["in:6", "affine", "dense:3", "relu"]), &[4, 6]);
    assert!(
        plan.pass_log.iter().any(|l| l.contains("affine folded")),
        "{:?}",
        plan.pass_log
    );
    eprintln!("affine folding: max relative error {err:e}");
    assert!(err < 1e-5, "affine folding error {err}");
}

#[test]
fn unoptimized_batch_norm_and_affine_steps_match_formulas() {
    let g = chain(&["in:2", "affine", "bn"]);
    let plan = compile_with(g, false);
    let v = |a: &[f32]| ndarray::arr1(a).into_dyn();
    let w = Weights::from_named(
        &plan,
        vec![
            ("bn.gamma".into(), v(&[2.0, 1.0])),
            ("bn.beta".into(), v(&[0.5, 0.0])),
            ("bn.moving_mean".into(), v(&[1.0, -1.0])),
            ("bn.moving_variance".into(), v(&[3.999, 0.999])),
        ],
    )
    .unwrap();
    let x = arr2(&[[1.0f32, 3.0]]).into_dyn();
    let y = Interpreter::new(&plan, w)
        .unwrap()
        .run(&[TensorRef::F32(x.view())])
        .unwrap();
    // affine (chain's): scale [0.5, 1.5], shift [0, -1] → [0.5, 3.5];
    // bn: 2·(0.5 − 1)/√4 + 0.5 = 0, 1·(3.5 + 1)/√1 = 4.5 (epsilon 1e-3 completes the variance).
    assert!(
        (y[0][[0, 0]] - 0.0).abs() < 1e-6 && (y[0][[0, 1]] - 4.5).abs() < 1e-6,
        "{y:?}"
    );
}

#[test]
fn batch_sizes_change_and_buffers_are_reused() {
    let g = chain(&[
        "in:6,6,2", "conv:3", "relu", "flatten", "dense:4", "softmax",
    ]);
    let plan = compile_with(g, true);
    let mut it = Interpreter::new(&plan, random_weights(&plan, 1)).unwrap();
    let x = random_input(&[5, 6, 6, 2], 9);
    let all = it.run(&[TensorRef::F32(x.view())]).unwrap();
    let ptr = it
        .memory
        .buffers
        .iter()
        .map(Vec::as_ptr)
        .collect::<Vec<_>>();
    let again = it.run(&[TensorRef::F32(x.view())]).unwrap();
    assert_eq!(all, again, "same input, same bits");
    assert_eq!(
        ptr,
        it.memory
            .buffers
            .iter()
            .map(Vec::as_ptr)
            .collect::<Vec<_>>()
    );
    for n in 0..5 {
        let one = x
            .slice_axis(ndarray::Axis(0), ndarray::Slice::from(n..=n))
            .to_owned();
        let y = it.run(&[TensorRef::F32(one.view())]).unwrap();
        let expected = all[0]
            .slice_axis(ndarray::Axis(0), ndarray::Slice::from(n..=n))
            .to_owned();
        let diff = (&y[0] - &expected)
            .mapv(f32::abs)
            .fold(0.0f32, |a, &b| a.max(b));
        assert!(diff < 1e-6, "sample {n}: {diff}");
    }
}

#[test]
fn inputs_are_checked_against_the_signature() {
    let g = chain(&["in:4", "dense:2"]);
    let plan = compile_with(g, true);
    let mut it = Interpreter::new(&plan, random_weights(&plan, 1)).unwrap();
    let x = ArrayD::<f32>::zeros(IxDyn(&[2, 5]));
    let e = it.run(&[TensorRef::F32(x.view())]).unwrap_err();
    assert!(matches!(e, RunError::InputShape { .. }), "{e}");
    assert_eq!(e.to_diagnostic().code.as_str(), "E0802");
    let ids = ArrayD::<i32>::zeros(IxDyn(&[2, 4]));
    let e = it.run(&[TensorRef::I32(ids.view())]).unwrap_err();
    assert_eq!(e.to_diagnostic().code.as_str(), "E0801", "{e}");
    let e = it.run(&[]).unwrap_err();
    assert_eq!(e.to_diagnostic().code.as_str(), "E0800", "{e}");
    let mut x = ArrayD::<f32>::zeros(IxDyn(&[2, 4]));
    x[[1, 2]] = f32::NAN;
    let e = it.run(&[TensorRef::F32(x.view())]).unwrap_err();
    assert_eq!(
        e,
        RunError::NonFiniteInput {
            input: "x".into(),
            count: 1,
            first: 6
        }
    );
    assert_eq!(e.to_diagnostic().code.as_str(), "E0803");
}

#[test]
fn non_finite_counts_the_same_on_contiguous_and_strided_views() {
    let mut x = ArrayD::<f32>::zeros(IxDyn(&[3, 4]));
    x[[0, 3]] = f32::INFINITY;
    x[[1, 1]] = f32::NAN;
    x[[2, 1]] = f32::NEG_INFINITY;
    assert_eq!(signature::non_finite(&x.view()), Some((3, 3)));
    // The transpose is not contiguous: the element order is the view's, not memory's.
    let t = x.view().reversed_axes();
    assert!(t.as_slice().is_none());
    assert_eq!(signature::non_finite(&t), Some((3, 4)));
    assert_eq!(
        signature::non_finite(&ArrayD::<f32>::ones(IxDyn(&[5])).view()),
        None
    );
}

#[test]
fn memory_budget_is_checked_before_allocating() {
    let g = chain(&["in:1000", "dense:1000", "relu", "dense:10"]);
    let plan = compile_with(g, true);
    let mut it = Interpreter::new(&plan, random_weights(&plan, 1)).unwrap();
    it.set_memory_budget(1 << 20);
    // 1000 samples need at least (1000 + 1000) floats each = 8 MB > 1 MiB.
    let x = ArrayD::<f32>::zeros(IxDyn(&[1000, 1000]));
    let e = it.run(&[TensorRef::F32(x.view())]).unwrap_err();
    let RunError::MemoryBudget { batch, needed, .. } = e.clone() else {
        panic!("{e}")
    };
    assert_eq!(batch, 1000);
    assert!(needed >= 8_000_000, "{needed}");
    assert_eq!(e.to_diagnostic().code.as_str(), "E0804");
    assert!(it.memory.buffers.is_empty(), "nothing allocated");
    let x = ArrayD::<f32>::zeros(IxDyn(&[10, 1000]));
    assert!(it.run(&[TensorRef::F32(x.view())]).is_ok());
}

/// The conv steps' scratch (im2col patch matrices) counts against the budget, before anything
/// is allocated: a 3×3 conv over 64×64×32 keeps 4096 × 288 floats of patches for one sample
/// (4.7 MB), nine times its activations (0.5 MB).
#[test]
fn conv_scratch_counts_against_the_memory_budget() {
    let g = chain(&["in:64,64,32", "conv_same:1"]);
    let plan = compile_with(g, true);
    let mut it = Interpreter::new(&plan, random_weights(&plan, 1)).unwrap();
    it.set_memory_budget(2 << 20);
    let x = ArrayD::<f32>::zeros(IxDyn(&[1, 64, 64, 32]));
    let e = it.run(&[TensorRef::F32(x.view())]).unwrap_err();
    let RunError::MemoryBudget { batch, needed, .. } = e.clone() else {
        panic!("{e}")
    };
    assert_eq!(batch, 1);
    let patches = 4096 * 288 * 4;
    let activations = (64 * 64 * 32 + 64 * 64) * 4;
    assert_eq!(needed, patches + activations);
    assert!(it.memory.buffers.is_empty(), "nothing allocated");
    it.set_memory_budget(8 << 20);
    assert!(it.run(&[TensorRef::F32(x.view())]).is_ok());
}

/// Fresh weights are sized by the plan's parameter table alone: a hand-edited plan that declares
/// terabytes (or more than 2^64 bytes) of parameters is refused before anything is allocated.
#[test]
fn fresh_weights_over_the_parameter_limit_are_e0717() {
    let plan = compile_with(chain(&["in:4", "dense:3"]), true);
    // dense.kernel [4, 3] and dense.bias [3]: 60 bytes.
    assert!(crate::runtime::weights::init_weights_within(&plan, 0, 60).is_ok());
    let e = crate::runtime::weights::init_weights_within(&plan, 0, 59).unwrap_err();
    assert!(
        matches!(
            e,
            WeightsError::TooLarge {
                bytes: Some(60),
                limit: 59
            }
        ),
        "{e}"
    );
    let mut edited = plan.clone();
    for (shape, bytes) in [
        (vec![1 << 20, 1 << 20], Some((4 << 40) + 12)),
        (vec![1 << 40, 1 << 40], None),
    ] {
        edited.params[0].shape = shape;
        let e = init_weights(&edited, 0).unwrap_err();
        let WeightsError::TooLarge {
            bytes: found,
            limit,
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!((*found, *limit), (bytes, 4 << 30));
        assert_eq!(e.to_diagnostic("p.plan").code.as_str(), "E0717");
    }
}

#[test]
fn kernel_failures_are_e0806() {
    // An explicitly padded pool passes the IR's shape rule but has no kernel: refused cleanly.
    let mut g = chain(&["in:4,4,1"]);
    let x = g.outputs.pop().unwrap();
    let window = crate::ir::Window {
        size: [2, 2],
        strides: [2, 2],
        dilation: [1, 1],
        padding: crate::ir::Padding::Explicit([1, 1, 1, 1]),
    };
    let y = g
        .add_node("pool", crate::ir::Op::MaxPool2d { window }, vec![x])
        .unwrap();
    g.outputs.push(y);
    let plan = compile_with(g, true);
    let mut it = Interpreter::new(&plan, random_weights(&plan, 1)).unwrap();
    let x = ArrayD::<f32>::zeros(IxDyn(&[1, 4, 4, 1]));
    let e = it.run(&[TensorRef::F32(x.view())]).unwrap_err();
    assert_eq!(e.to_diagnostic().code.as_str(), "E0806", "{e}");
    let k = RunError::kernel(
        "conv2d",
        crate::runtime::kernels::KernelError::Overflow { op: "conv2d" },
    );
    assert_eq!(k.to_diagnostic().code.as_str(), "E0806");
}

#[test]
fn results_are_bit_identical_across_thread_counts() {
    let g = chain(&[
        "in:7,7,3",
        "conv:5",
        "relu",
        "maxpool:2",
        "flatten",
        "dense:3",
    ]);
    let plan = compile_with(g, true);
    let x = random_input(&[5, 7, 7, 3], 4);
    let text = compile_with(
        zoo::lstm_classifier(zoo::TextSizes {
            vocab: 9,
            embed: 3,
            units: &[4],
            seq: 5,
            classes: 2,
        })
        .unwrap(),
        true,
    );
    let ids = Array::from_shape_fn((5, 5), |(n, t)| ((n + 2 * t) % 9) as i64).into_dyn();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let a = Interpreter::new(&plan, random_weights(&plan, 3))
                .unwrap()
                .run(&[TensorRef::F32(x.view())])
                .unwrap();
            let b = Interpreter::new(&text, random_weights(&text, 3))
                .unwrap()
                .run(&[TensorRef::I64(ids.view())])
                .unwrap();
            (a, b)
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

/// A dense product large enough to split its rows between threads (`ops::dense::row_slices`)
/// gives the bits of the one-call path (one thread), including an odd split.
#[test]
fn a_large_dense_split_by_rows_gives_the_one_call_bits() {
    let g = chain(&["in:256", "dense:512", "relu", "dense:7"]);
    let plan = compile_with(g, true);
    let x = random_input(&[13, 256], 6);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            Interpreter::new(&plan, random_weights(&plan, 2))
                .unwrap()
                .run(&[TensorRef::F32(x.view())])
                .unwrap()
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
    assert!(one[0].iter().any(|&v| v != 0.0));
}

/// A layer norm of at least 2^15 values splits its rows between the pool's threads (here 40 ·
/// 16 rows of 64 on 2 and 3 threads); every row is normalized alone, so the bits are the
/// one-thread bits, and each row matches an f64 reference.
#[test]
fn a_large_layer_norm_split_by_rows_gives_the_one_call_bits() {
    let plan = compile_with(chain(&["in:16,64", "layer_norm"]), true);
    let x = random_input(&[40, 16, 64], 8);
    let weights = random_weights(&plan, 4);
    let run = |threads: usize, batch: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let x = x.slice_axis(ndarray::Axis(0), (0..batch).into());
        pool.install(|| {
            Interpreter::new(&plan, weights.clone())
                .unwrap()
                .run(&[TensorRef::F32(x)])
                .unwrap()
        })
    };
    let one = run(1, 40);
    assert_eq!(one, run(2, 40));
    assert_eq!(one, run(3, 40));
    // Below the threshold (one sample: 1024 values) the call runs whole: the same rows.
    let first = run(2, 1);
    assert_eq!(
        first[0].as_slice().unwrap(),
        &one[0].as_slice().unwrap()[..16 * 64]
    );
    let gamma = weights.by_name("layer_norm.gamma").unwrap();
    let beta = weights.by_name("layer_norm.beta").unwrap();
    let rows = x.as_slice().unwrap().chunks_exact(64);
    for (row, out) in rows.zip(one[0].as_slice().unwrap().chunks_exact(64)) {
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / 64.0;
        let var = row
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / 64.0;
        for k in 0..64 {
            let xhat = (f64::from(row[k]) - mean) / (var + 1e-3).sqrt();
            let want = f64::from(gamma[[k]]) * xhat + f64::from(beta[[k]]);
            assert!(
                (f64::from(out[k]) - want).abs() < 1e-5,
                "{} vs {want}",
                out[k]
            );
        }
    }
}

/// Batch 1 on several threads: one slice of the batch, whose conv products split their rows
/// (output pixels) between the threads instead. The seed CNN's second conv (11 × 11 pixels,
/// 10 × 10 of them computed when fused with its pool, 3 · 3 · 32 taps, 64 channels) is above
/// the split threshold either way, so this takes that path, fused with its pool and unfused;
/// the bits are the one-thread bits.
#[test]
fn a_single_sample_split_by_pixels_gives_the_one_thread_bits() {
    const { assert!(10 * 10 * 3 * 3 * 32 * 64 >= crate::runtime::kernels::simd_gemm::PARALLEL_MIN_WORK) };
    let graph = zoo::seed_cnn().unwrap();
    let fused = compile_with(graph.clone(), true);
    let unfused = compile(
        graph,
        Mode::Infer,
        &PassOptions {
            disabled: vec![crate::passes::PLAN_FUSE_CONV_POOL.into()],
            ..PassOptions::default()
        },
        "test".into(),
    )
    .unwrap();
    let x = random_input(&[1, 28, 28, 1], 21);
    for plan in [&fused, &unfused] {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut interp = Interpreter::new(plan, random_weights(plan, 5)).unwrap();
                let first = interp.run(&[TensorRef::F32(x.view())]).unwrap();
                // A second call reuses the scratch of the first.
                assert_eq!(first, interp.run(&[TensorRef::F32(x.view())]).unwrap());
                first
            })
        };
        let one = run(1);
        assert!(one[0].iter().any(|&v| v != 0.0));
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }
}

#[test]
fn fused_conv_pool_gives_the_unfused_bits_for_every_batch_and_thread_count() {
    // Max and average pools, valid and same padding, tiles of one and of several samples.
    let avg = |g: &mut Graph| {
        for n in &mut g.nodes {
            if let crate::ir::Op::MaxPool2d { window } = n.op {
                n.op = crate::ir::Op::AvgPool2d { window };
            }
        }
    };
    let mut pooled_avg = chain(&["in:9,9,2", "conv_same:3", "tanh", "maxpool:2", "flatten"]);
    avg(&mut pooled_avg);
    let graphs = [
        zoo::seed_cnn().unwrap(),
        pooled_avg,
        chain(&["in:5,5,3", "conv:4", "maxpool:3", "flatten", "dense:2"]),
    ];
    for g in graphs {
        let fused = compile_with(g.clone(), true);
        assert!(fused.steps.iter().any(|s| s.fused_with_next));
        let unfused = compile(
            g,
            Mode::Infer,
            &PassOptions {
                disabled: vec![crate::passes::PLAN_FUSE_CONV_POOL.into()],
                ..PassOptions::default()
            },
            "test".into(),
        )
        .unwrap();
        assert!(unfused.steps.iter().all(|s| !s.fused_with_next));
        let input = fused.values[fused.inputs[0] as usize].fact.dims.clone();
        for (batch, threads) in [(1, 1), (3, 2), (31, 2), (40, 3)] {
            let mut shape = vec![batch];
            shape.extend(input.iter().skip(1).map(|d| match d {
                crate::ir::Dim::Known(k) => *k,
                crate::ir::Dim::Symbol(_) => 1,
            }));
            let x = random_input(&shape, batch as u64);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (a, b) = pool.install(|| {
                let run = |p: &ExecutionPlan| {
                    Interpreter::new(p, random_weights(p, 8))
                        .unwrap()
                        .run(&[TensorRef::F32(x.view())])
                        .unwrap()
                };
                (run(&fused), run(&unfused))
            });
            assert_eq!(a, b, "batch {batch}, {threads} thread(s)");
            assert!(a[0].iter().any(|&v| v != 0.0));
        }
    }
}

#[test]
fn a_fused_conv_output_is_not_readable() {
    let plan = compile_with(chain(&["in:6,6,1", "conv:2", "maxpool:2"]), true);
    let conv_out = plan.steps[0].output;
    assert!(plan.steps[0].fused_with_next);
    let mut it = Interpreter::new(&plan, random_weights(&plan, 1)).unwrap();
    let x = random_input(&[2, 6, 6, 1], 1);
    let out = it.run(&[TensorRef::F32(x.view())]).unwrap();
    assert_eq!(out[0].shape(), [2, 2, 2, 2]);
    assert!(it.value(conv_out).is_none());
    assert!(it.value(plan.steps[1].output).is_some());
}
