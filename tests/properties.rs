//! Property tests over random model specs: layer stacks with random sizes.
//!
//! (a) every generated spec checks without a panic, and the checker accepts it exactly when an
//!     independent shape model written here (Keras' size formulas) says every size is positive;
//! (b) for an accepted model, the checker's output shape equals that reference, each layer's
//!     checked fact equals the fact of the same-named value in the unoptimized plan, and the
//!     interpreter, run with seeded random weights on a random batch of 2, returns an array of
//!     exactly that shape;
//! (c) the optimized and the `-O0` plans agree within a relative error of 1e-4;
//! (d) the optimized plan exported to ONNX and run by tract (an independent ONNX
//!     implementation) agrees with the interpreter within 1e-4 at batch sizes 1 and 2.
//!
//! Runs are deterministic: a fixed ChaCha seed, no failure-persistence file.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelc::check::types::{CheckedModel, DType, Dim};
use modelc::diag::FileId;
use modelc::passes::{Mode, PassOptions};
use modelc::plan::{self, ExecutionPlan};
use modelc::runtime::interp::{Interpreter, TensorRef};
use modelc::runtime::weights::{init_weights, Weights};
use modelc::syntax::{parse, Limits};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand_core::{Rng, SeedableRng};
use std::cell::Cell;

#[path = "properties/reference.rs"]
mod reference;

#[path = "export/onnx_check.rs"]
mod onnx_check;

use reference::{Layer, Spec};

const BATCH: usize = 2;

const ACTIVATIONS: &[&str] = &[
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "gelu",
    "softmax",
    // Issue 15's activations.
    "swish",
    "silu",
    "elu",
    "selu",
    "softplus",
    "hard_sigmoid",
    "relu6",
    "mish",
];

fn activation() -> impl Strategy<Value = &'static str> {
    prop::sample::select(ACTIVATIONS)
}

fn shape_preserving() -> impl Strategy<Value = Layer> {
    prop_oneof![
        Just(Layer::Dropout),
        Just(Layer::BatchNorm),
        activation().prop_map(Layer::Activation),
    ]
}

fn image_layer() -> impl Strategy<Value = Layer> {
    prop_oneof![
        3 => (1..=4usize, 1..=4usize, 1..=3usize, 1..=2usize, any::<bool>(), activation()).prop_map(
            |(filters, kernel, stride, dilation, same, activation)| Layer::Conv {
                filters,
                kernel,
                stride,
                dilation,
                same,
                activation,
            }
        ),
        1 => (1..=3usize, 1..=2usize, 1..=2usize, 1..=2usize, any::<bool>(), activation()).prop_map(
            |(kernel, multiplier, stride, dilation, same, activation)| Layer::Depthwise {
                kernel,
                multiplier,
                stride,
                dilation,
                same,
                activation,
            }
        ),
        1 => (1..=3usize, 1..=3usize, 1..=2usize, 1..=2usize, 1..=2usize, any::<bool>(), activation()).prop_map(
            |(filters, kernel, multiplier, stride, dilation, same, activation)| Layer::Separable {
                filters,
                kernel,
                multiplier,
                stride,
                dilation,
                same,
                activation,
            }
        ),
        1 => (1..=3usize, 1..=3usize, 1..=2usize, any::<bool>(), activation()).prop_map(
            |(filters, kernel, stride, same, activation)| Layer::ConvTranspose {
                filters,
                kernel,
                stride,
                same,
                activation,
            }
        ),
        1 => (1..=2usize, 1..=2usize, any::<bool>()).prop_map(|(sh, sw, bilinear)| Layer::UpSampling {
            size: (sh, sw),
            bilinear,
        }),
        2 => (any::<bool>(), 1..=3usize, prop::option::of(1..=3usize), any::<bool>()).prop_map(
            |(max, pool, stride, same)| Layer::Pool {
                max,
                pool,
                stride,
                same,
            }
        ),
        1 => shape_preserving(),
    ]
}

fn dense_layer() -> impl Strategy<Value = Layer> {
    prop_oneof![
        2 => (1..=8usize, activation()).prop_map(|(units, activation)| Layer::Dense { units, activation }),
        1 => shape_preserving(),
    ]
}

fn rnn(sequences: bool) -> impl Strategy<Value = Layer> {
    (
        prop::sample::select(&["simple_rnn", "lstm", "gru"][..]),
        1..=5usize,
        prop::sample::select(
            &[
                "",
                "",
                ", go_backwards: true",
                ", dropout: 0.2, recurrent_dropout: 0.1",
                ", reset_after: false",
                ", go_backwards: true, reset_after: false",
            ][..],
        ),
    )
        .prop_map(move |(cell, units, options)| Layer::Rnn {
            cell,
            units,
            sequences,
            // `reset_after` is a GRU's argument only.
            options: if cell == "gru" || !options.contains("reset_after") {
                options
            } else {
                ""
            },
        })
}

fn bidirectional(sequences: bool) -> impl Strategy<Value = Layer> {
    (
        prop::sample::select(&["simple_rnn", "lstm", "gru"][..]),
        1..=4usize,
        prop::sample::select(&["concat", "sum", "mul", "ave"][..]),
    )
        .prop_map(move |(cell, units, merge)| Layer::Bidirectional {
            cell,
            units,
            sequences,
            merge,
        })
}

/// A recurrent layer, plain or bidirectional.
fn any_rnn(sequences: bool) -> impl Strategy<Value = Layer> {
    prop_oneof![3 => rnn(sequences), 1 => bidirectional(sequences)]
}

/// Attention-family layers on a sequence: self-attention, or a position table that may be
/// shorter than the sequence (the reference refuses that).
fn attention_layer() -> impl Strategy<Value = Layer> {
    prop_oneof![
        2 => (1..=3usize, 1..=4usize, any::<bool>()).prop_map(|(heads, key_dim, causal)| {
            Layer::SelfAttention {
                heads,
                key_dim,
                causal,
            }
        }),
        1 => (3..=6usize).prop_map(|max_length| Layer::PositionEmbedding { max_length }),
    ]
}

/// Image stacks: convs and pools, then flatten or a global pool, then dense layers.
fn image_spec() -> impl Strategy<Value = Spec> {
    (
        1..=10usize,
        1..=10usize,
        1..=3usize,
        prop::collection::vec((image_layer(), any::<bool>()), 0..5),
        prop_oneof![
            Just(Layer::Flatten),
            Just(Layer::GlobalPool { max: true }),
            Just(Layer::GlobalPool { max: false })
        ],
        prop::collection::vec(dense_layer(), 0..3),
        1..=5usize,
    )
        .prop_map(|(h, w, c, convs, reduce, dense, out)| {
            let mut layers = Vec::new();
            // Keras' pattern: a linear conv, then batch norm, then the activation.
            for (mut layer, norm) in convs {
                if let (Layer::Conv { activation, .. }, true) = (&mut layer, norm) {
                    let after = std::mem::replace(activation, "linear");
                    layers.extend([layer, Layer::BatchNorm, Layer::Activation(after)]);
                } else {
                    layers.push(layer);
                }
            }
            layers.push(reduce);
            layers.extend(dense);
            layers.push(Layer::Dense {
                units: out,
                activation: "linear",
            });
            Spec {
                input: vec![h, w, c],
                tokens: None,
                layers,
            }
        })
}

/// Sequence stacks: token ids through an embedding (or float features), maybe attention-family
/// layers, recurrent layers that return sequences, a last recurrent layer that may, then dense
/// layers.
fn sequence_spec() -> impl Strategy<Value = Spec> {
    (
        1..=5usize,
        prop::option::of((2..=20usize, 1..=6usize)),
        1..=4usize,
        prop::collection::vec(any_rnn(true), 0..2),
        any::<bool>().prop_flat_map(any_rnn),
        prop::collection::vec(dense_layer(), 0..2),
        prop::option::of(prop::collection::vec(attention_layer(), 1..3)),
    )
        .prop_map(|(t, embedding, features, middle, last, dense, attention)| {
            let mut layers = Vec::new();
            let (input, tokens) = match embedding {
                Some((vocab, dim)) => {
                    layers.push(Layer::Embedding { vocab, dim });
                    (vec![t], Some(vocab))
                }
                None => (vec![t, features], None),
            };
            let sequences = matches!(
                last,
                Layer::Rnn {
                    sequences: true,
                    ..
                } | Layer::Bidirectional {
                    sequences: true,
                    ..
                }
            );
            if let Some(attention) = attention {
                layers.extend(attention);
            }
            layers.extend(middle);
            layers.push(last);
            if sequences {
                layers.push(Layer::Flatten);
            }
            layers.extend(dense);
            Spec {
                input,
                tokens,
                layers,
            }
        })
}

/// Issue 15: sequences `[T, C]` through conv1d layers and 1-D pools, then flatten or a global
/// 1-D pool, then dense layers.
fn conv1d_spec() -> impl Strategy<Value = Spec> {
    let conv = (
        1..=4usize,
        1..=4usize,
        1..=3usize,
        1..=2usize,
        prop::sample::select(&["valid", "same", "causal"][..]),
        activation(),
    )
        .prop_map(
            |(filters, kernel, stride, dilation, padding, activation)| Layer::Conv1d {
                filters,
                kernel,
                stride,
                dilation,
                padding,
                activation,
            },
        );
    let pool = (
        any::<bool>(),
        1..=3usize,
        prop::option::of(1..=3usize),
        any::<bool>(),
    )
        .prop_map(|(max, pool, stride, same)| Layer::Pool1d {
            max,
            pool,
            stride,
            same,
        });
    (
        1..=12usize,
        1..=3usize,
        prop::collection::vec(
            prop_oneof![3 => conv, 2 => pool, 1 => shape_preserving()],
            0..5,
        ),
        prop_oneof![
            Just(Layer::Flatten),
            Just(Layer::GlobalPool1d { max: true }),
            Just(Layer::GlobalPool1d { max: false })
        ],
        prop::collection::vec(dense_layer(), 0..2),
        1..=3usize,
    )
        .prop_map(|(t, c, mut layers, reduce, dense, out)| {
            layers.push(reduce);
            layers.extend(dense);
            layers.push(Layer::Dense {
                units: out,
                activation: "linear",
            });
            Spec {
                input: vec![t, c],
                tokens: None,
                layers,
            }
        })
}

/// Vectors through dense layers.
fn vector_spec() -> impl Strategy<Value = Spec> {
    (1..=8usize, prop::collection::vec(dense_layer(), 1..5)).prop_map(|(f, layers)| Spec {
        input: vec![f],
        tokens: None,
        layers,
    })
}

/// Any layer anywhere: mostly ill-formed stacks, for "no panic, and the reference agrees".
fn loose_spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec(1..=6usize, 1..=3),
        prop::collection::vec(
            prop_oneof![
                image_layer(),
                dense_layer(),
                rnn(true),
                rnn(false),
                bidirectional(true),
                Just(Layer::Flatten),
                Just(Layer::GlobalPool { max: false })
            ],
            1..5,
        ),
    )
        .prop_map(|(input, layers)| Spec {
            input,
            tokens: None,
            layers,
        })
}

fn any_spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        3 => image_spec(),
        2 => sequence_spec(),
        2 => conv1d_spec(),
        1 => vector_spec(),
        2 => loose_spec(),
    ]
}

/// The checked model of `spec`, or `None` when the checker refused it.
fn check(spec: &Spec) -> Option<CheckedModel> {
    let text = spec.source();
    let parsed = parse(FileId::default(), &text, &Limits::default());
    assert!(
        parsed.diagnostics.is_empty(),
        "a generated spec does not parse:\n{text}{:?}",
        parsed.diagnostics
    );
    let mut checked = modelc::check::check_file(FileId::default(), &parsed.file);
    if checked.has_errors() {
        return None;
    }
    Some(checked.models.remove(0))
}

/// A per-sample shape behind the batch symbol `N`, as the checker writes it.
fn batched(shape: &[usize]) -> Vec<Dim> {
    std::iter::once(Dim::Symbol("N".into()))
        .chain(shape.iter().map(|&d| Dim::Known(d)))
        .collect()
}

/// Dims as concrete sizes, with the batch symbol bound to [`BATCH`].
fn concrete(dims: &[Dim]) -> Vec<usize> {
    dims.iter()
        .map(|d| match d {
            Dim::Known(n) => *n,
            Dim::Symbol(_) => BATCH,
        })
        .collect()
}

/// A random input batch for `spec` (token ids below the vocabulary), from `seed`.
fn random_input(spec: &Spec, seed: u64) -> Input {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut shape = vec![BATCH];
    shape.extend(&spec.input);
    let count: usize = shape.iter().product();
    match spec.tokens {
        Some(vocab) => Input::I32(
            ArrayD::from_shape_vec(
                IxDyn(&shape),
                (0..count)
                    .map(|_| (rng.next_u32() % vocab as u32) as i32)
                    .collect(),
            )
            .unwrap(),
        ),
        None => Input::F32(
            ArrayD::from_shape_vec(
                IxDyn(&shape),
                (0..count)
                    .map(|_| (rng.next_u32() >> 8) as f32 / (1 << 23) as f32 - 1.0)
                    .collect(),
            )
            .unwrap(),
        ),
    }
}

enum Input {
    F32(ArrayD<f32>),
    I32(ArrayD<i32>),
}

impl Input {
    fn view(&self) -> TensorRef<'_> {
        match self {
            Input::F32(a) => TensorRef::F32(a.view()),
            Input::I32(a) => TensorRef::I32(a.view()),
        }
    }
}

fn compile(model: &CheckedModel, no_optimize: bool) -> ExecutionPlan {
    let graph = modelc::ir::lower(model).unwrap();
    let options = PassOptions {
        no_optimize,
        ..PassOptions::default()
    };
    plan::compile(graph, Mode::Infer, &options, "property".into()).unwrap()
}

/// Stored tensors for the unoptimized plan `o0`, by name: the initializers' kernels, and
/// random biases, batch-norm scales, offsets and moving statistics (their initial values, ones
/// and zeros, would make a batch norm the identity and hide a wrong fold).
fn random_weights(o0: &ExecutionPlan, seed: u64) -> Vec<(String, ArrayD<f32>)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut uniform =
        |lo: f32, hi: f32| lo + (hi - lo) * (rng.next_u32() >> 8) as f32 / (1 << 24) as f32;
    let weights = init_weights(o0, seed).unwrap();
    weights
        .entries()
        .iter()
        .filter(|e| e.stored)
        .map(|e| {
            let range = match e.name.rsplit('.').next() {
                Some("moving_variance") => Some((0.25, 2.0)),
                Some("gamma") => Some((0.5, 1.5)),
                Some("beta" | "moving_mean" | "bias") => Some((-0.5, 0.5)),
                _ => None,
            };
            let mut value = e.value.clone();
            if let Some((lo, hi)) = range {
                value.iter_mut().for_each(|v| *v = uniform(lo, hi));
            }
            (e.name.clone(), value)
        })
        .collect()
}

/// Runs `plan` on `input` with the stored tensors `tensors` (derived parameters, such as a
/// folded batch norm, are computed from them as `modelc run` does).
fn run(plan: &ExecutionPlan, tensors: &[(String, ArrayD<f32>)], input: &Input) -> ArrayD<f32> {
    let weights = Weights::from_named(plan, tensors.to_vec()).unwrap();
    let mut interp = Interpreter::new(plan, weights).unwrap();
    interp.run(&[input.view()]).unwrap().remove(0)
}

/// The largest `|a - b| / max(1, |b|)` over two arrays of the same shape.
fn max_relative_error(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| {
            assert!(x.is_finite() && y.is_finite(), "{x} vs {y}");
            (x - y).abs() / y.abs().max(1.0)
        })
        .fold(0.0, f32::max)
}

/// Runs `test` on `cases` specs from a fixed seed (no persistence file: the seed is the record).
fn for_specs(cases: u32, seed: u8, test: impl Fn(&Spec) -> Result<(), TestCaseError>) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    if let Err(e) = runner.run(&any_spec(), |spec| test(&spec)) {
        panic!("{e}");
    }
}

#[test]
fn checker_accepts_exactly_the_specs_the_reference_shapes_allow() {
    let accepted = Cell::new(0u32);
    for_specs(400, 1, |spec| {
        let model = check(spec);
        let expected = spec.expected();
        prop_assert_eq!(
            model.is_some(),
            expected.is_some(),
            "checker vs reference on\n{}",
            spec.source()
        );
        if let (Some(model), Some(expected)) = (model, expected) {
            accepted.set(accepted.get() + 1);
            // One checked layer per line, each with the reference's shape behind the batch `N`.
            prop_assert_eq!(model.layers.len(), expected.len(), "{}", spec.source());
            for (layer, want) in model.layers.iter().zip(&expected) {
                prop_assert_eq!(
                    &layer.output.dims,
                    &batched(want),
                    "layer `{}` of\n{}",
                    layer.name,
                    spec.source()
                );
                prop_assert_eq!(layer.output.dtype, DType::F32, "{}", layer.name);
            }
            let last = expected.last().map_or(&spec.input, |s| s);
            prop_assert_eq!(&model.output_fact.dims, &batched(last), "{}", spec.source());
        }
        Ok(())
    });
    // The generator must produce both kinds, or the property says little.
    assert!(
        (100..380).contains(&accepted.get()),
        "{} of 400 accepted",
        accepted.get()
    );
}

#[test]
fn accepted_models_run_with_the_checked_shapes_and_optimized_plans_agree() {
    let worst = Cell::new(0.0f32);
    let (ran, rewritten, folded) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    for_specs(250, 2, |spec| {
        let Some(model) = check(spec) else {
            return Ok(());
        };
        let o0 = compile(&model, true);
        // Every layer's checked fact is the fact of its value in the unoptimized plan.
        for layer in &model.layers {
            let value = o0.values.iter().find(|v| v.name == layer.name);
            let value = value.unwrap_or_else(|| panic!("no value `{}` in the plan", layer.name));
            prop_assert_eq!(&value.fact.dims, &layer.output.dims, "{}", layer.name);
            prop_assert_eq!(value.fact.dtype, layer.output.dtype, "{}", layer.name);
        }
        let input = random_input(spec, 11);
        let tensors = random_weights(&o0, 7);
        let y0 = run(&o0, &tensors, &input);
        // The array the interpreter returns has the checker's shape, and the reference's.
        let want = concrete(&model.output_fact.dims);
        prop_assert_eq!(y0.shape(), want.as_slice());
        let reference = spec.expected().unwrap();
        let last = reference.last().map_or(&spec.input, |s| s);
        prop_assert_eq!(&y0.shape()[1..], last.as_slice());
        let optimized = compile(&model, false);
        ran.set(ran.get() + 1);
        if optimized.steps.len() < o0.steps.len() {
            rewritten.set(rewritten.get() + 1);
        }
        if optimized.pass_log.iter().any(|l| l.contains("folded into")) {
            folded.set(folded.get() + 1);
        }
        let y = run(&optimized, &tensors, &input);
        let err = max_relative_error(&y, &y0);
        worst.set(worst.get().max(err));
        prop_assert!(err <= 1e-4, "relative error {err} on\n{}", spec.source());
        Ok(())
    });
    println!(
        "{} models ran, {} with fewer steps optimized, {} with a folded batch norm; largest \
         relative error vs -O0: {:e}",
        ran.get(),
        rewritten.get(),
        folded.get(),
        worst.get()
    );
    // Enough accepted models, and enough that the passes changed, for the comparison to mean
    // something.
    assert!(ran.get() >= 50, "{} models ran", ran.get());
    assert!(
        rewritten.get() >= 20,
        "{} models rewritten",
        rewritten.get()
    );
    assert!(
        folded.get() >= 10,
        "{} models with a folded batch norm",
        folded.get()
    );
    // Folding changes the rounding: an exact match everywhere would mean nothing was compared.
    assert!(worst.get() > 0.0);
}

impl Input {
    /// The first `n` samples, for the ONNX comparison.
    fn head(&self, n: usize) -> onnx_check::Batch {
        use ndarray::{Axis, Slice};
        match self {
            Input::F32(a) => {
                onnx_check::Batch::F32(a.slice_axis(Axis(0), Slice::from(0..n)).to_owned())
            }
            Input::I32(a) => {
                onnx_check::Batch::I32(a.slice_axis(Axis(0), Slice::from(0..n)).to_owned())
            }
        }
    }
}

#[test]
fn accepted_models_export_to_onnx_and_run_in_tract_as_in_modelc() {
    let (ran, worst) = (Cell::new(0u32), Cell::new(0.0f32));
    let tract_bug = Cell::new(0u32);
    for_specs(80, 3, |spec| {
        let Some(model) = check(spec) else {
            return Ok(());
        };
        let plan = compile(&model, false);
        let tensors = random_weights(&compile(&model, true), 7);
        let weights = Weights::from_named(&plan, tensors).unwrap();
        let input = random_input(spec, 13);
        let batches = vec![vec![input.head(1)], vec![input.head(BATCH)]];
        // tract 0.22.5's im2col subtracts past zero on a dilated `same` conv over a map smaller
        // than the kernel (in every tract form of the model, debug builds): that panic alone
        // is tract's and skips the case; any other panic is a failure.
        let compared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            onnx_check::compare(&plan, &weights, &batches, 17)
        }));
        let err = match compared {
            Ok(err) => err,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                prop_assert!(
                    message.contains("attempt to subtract with overflow"),
                    "{message} on\n{}",
                    spec.source()
                );
                tract_bug.set(tract_bug.get() + 1);
                return Ok(());
            }
        };
        worst.set(worst.get().max(err));
        ran.set(ran.get() + 1);
        prop_assert!(err <= 1e-4, "relative error {err} on\n{}", spec.source());
        Ok(())
    });
    println!(
        "{} models exported and run in tract ({} runs on tract's unoptimized model); largest \
         relative error vs modelc: {:e}",
        ran.get(),
        onnx_check::FALLBACKS.load(std::sync::atomic::Ordering::Relaxed),
        worst.get()
    );
    assert!(ran.get() >= 40, "{} models ran", ran.get());
    assert!(
        tract_bug.get() <= 4,
        "{} cases hit tract's im2col bug",
        tract_bug.get()
    );
}
