//! `modelc export --to onnx`: every shipped spec and a spec holding every layer, exported and
//! run by an independent ONNX implementation (tract), equal to modelc's interpreter within
//! 1e-4 at two batch sizes and several opsets; optimized and `-O0` plans (so folded and
//! unfolded forms, dropout and the embedding fold alike); the fitted preprocessing of a
//! trained plan; deterministic bytes; golden text dumps of two small graphs
//! (`tests/export/*.txt`, `MODELC_BLESS=1` regenerates them); the CLI's exit codes; and, opt-in,
//! ONNX's own checker and ONNX Runtime (`MODELC_PEERS_PYTHON`, see `ort_check.py`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "export/onnx_check.rs"]
mod onnx_check;

use modelc::data::spec::{Fitted, Step, Transform};
use modelc::diag::{FileId, Span};
use modelc::export::{self, ExportOptions};
use modelc::ir::DType;
use modelc::passes::{Mode, PassOptions};
use modelc::plan::{self, ExecutionPlan};
use modelc::runtime::weights::{init_weights, Weights};
use modelc::syntax::{parse, Limits};
use ndarray::{ArrayD, IxDyn};
use onnx_check::{
    compare, export_bytes, max_error, run_modelc, run_tract, run_tract_symbolic, Batch,
};
use rand_core::{Rng, SeedableRng};
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn compile_text(text: &str, no_optimize: bool) -> ExecutionPlan {
    let parsed = parse(FileId::default(), text, &Limits::default());
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let checked = modelc::check::check_file(FileId::default(), &parsed.file);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let graph = modelc::ir::lower(&checked.models[0]).unwrap();
    let options = PassOptions {
        no_optimize,
        ..PassOptions::default()
    };
    plan::compile(
        graph,
        Mode::Infer,
        &options,
        plan::spec_hash(text.as_bytes()),
    )
    .unwrap()
}

/// Seeded weights with random (not identity) batch-norm statistics and biases.
fn weights(plan: &ExecutionPlan, seed: u64) -> Weights {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut uniform =
        |lo: f32, hi: f32| lo + (hi - lo) * (rng.next_u32() >> 8) as f32 / (1 << 24) as f32;
    let fresh = init_weights(plan, seed).unwrap();
    let tensors = fresh
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
        .collect();
    Weights::from_named(plan, tensors).unwrap()
}

/// A random batch of `batch` samples for every input of `plan` (ids below `vocab`).
fn batches(plan: &ExecutionPlan, batch: usize, vocab: u32, seed: u64) -> Vec<Batch> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    plan.inputs
        .iter()
        .map(|&v| {
            let fact = &plan.values[v as usize].fact;
            let shape: Vec<usize> = std::iter::once(batch)
                .chain(fact.dims[1..].iter().map(|d| d.known().unwrap()))
                .collect();
            let count: usize = shape.iter().product();
            match fact.dtype {
                DType::F32 => Batch::F32(
                    ArrayD::from_shape_vec(
                        IxDyn(&shape),
                        (0..count)
                            .map(|_| (rng.next_u32() >> 8) as f32 / (1 << 23) as f32 - 1.0)
                            .collect(),
                    )
                    .unwrap(),
                ),
                DType::I32 => Batch::I32(
                    ArrayD::from_shape_vec(
                        IxDyn(&shape),
                        (0..count)
                            .map(|_| (rng.next_u32() % vocab) as i32)
                            .collect(),
                    )
                    .unwrap(),
                ),
                DType::I64 => Batch::I64(
                    ArrayD::from_shape_vec(
                        IxDyn(&shape),
                        (0..count)
                            .map(|_| i64::from(rng.next_u32() % vocab))
                            .collect(),
                    )
                    .unwrap(),
                ),
            }
        })
        .collect()
}

/// Exports `text`'s model (optimized and `-O0`) at `opsets`, runs it in tract at batch sizes
/// 1 and 3, and asserts it equals the interpreter within 1e-4.
fn assert_exports_equal(name: &str, text: &str, vocab: u32, opsets: &[i64]) {
    for no_optimize in [false, true] {
        let plan = compile_text(text, no_optimize);
        let w = weights(&plan, 5);
        let inputs = vec![batches(&plan, 1, vocab, 1), batches(&plan, 3, vocab, 2)];
        for &opset in opsets {
            let err = compare(&plan, &w, &inputs, opset);
            println!("{name} (-O0: {no_optimize}, opset {opset}): largest relative error {err:e}");
            assert!(err <= 1e-4, "{name} opset {opset}: relative error {err}");
        }
    }
}

#[test]
fn every_shipped_spec_exports_and_runs_in_tract_as_in_modelc() {
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("specs")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("mask_zero: true") {
            assert_a_masked_spec_is_refused(&path);
            continue;
        }
        assert_exports_equal(&path.display().to_string(), &text, 1000, &[13, 17]);
        seen += 1;
    }
    assert!(seen >= 4, "{seen} specs");
}

/// A spec whose recurrent layer reads a padding mask is refused with E1001 naming the layer:
/// ONNX's recurrences skip only trailing padding.
fn assert_a_masked_spec_is_refused(path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    let o = modelc(&[
        "export",
        path.to_str().unwrap(),
        "--random-weights",
        "1",
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}: {err}", path.display());
    assert!(
        err.contains("E1001") && err.contains("padding mask"),
        "{err}"
    );
    assert!(
        err.contains("bidirectional") || err.contains("lstm"),
        "{err}"
    );
    assert!(!out.exists());
}

/// Every layer of the language, in forms the shipped specs do not have.
const EVERY_LAYER: &str = r"
model Images(x: f32[N, 9, 9, 3]) -> f32[N, 5] {
    let d = x |> conv2d(4, kernel: 3, padding: same, strides: 2, activation: leaky_relu) |> batch_norm() |> avg_pool2d(pool: 2, padding: same) |> conv2d(4, kernel: 2, use_bias: false, activation: gelu)
    let e = d |> max_pool2d(pool: 2, strides: 1, padding: same) |> conv2d(4, kernel: 2, padding: [1, 0, 0, 1]) |> sigmoid()
    let e = e |> conv2d(4, kernel: 2, dilation: 2, padding: same) |> batch_norm() |> relu()
    let f = add(e, d)
    let g = f |> global_avg_pool2d()
    let h = f |> global_max_pool2d()
    concat(g, h) |> dropout(0.5) |> layer_norm() |> reshape(2, 4) |> flatten() |> dense(6, activation: sigmoid) |> tanh() |> batch_norm() |> gelu() |> leaky_relu(alpha: 0.1) |> linear() |> dense(5, activation: softmax)
}
";

const SEQUENCES: &str = r"
model Sequences(tokens: i32[N, 7]) -> f32[N, 3] {
    let l = tokens |> embedding(20, 6) |> gru(5, return_sequences: true) |> simple_rnn(4, return_sequences: true) |> lstm(3)
    let f = tokens |> embedding(20, 2) |> flatten() |> dense(3)
    concat(l, f) |> relu() |> dense(3, activation: softmax)
}
";

const FOLDED_RNNS: &str = r"
model Folded(tokens: i64[N, 6]) {
    let g = tokens |> embedding(30, 5) |> gru(3, return_sequences: true)
    let s = tokens |> embedding(30, 4) |> simple_rnn(3, return_sequences: true)
    let l = tokens |> embedding(30, 4) |> lstm(3, return_sequences: true)
    let c = tokens |> cast(f32) |> reshape(6, 1)
    concat(add(g, s, l), c)
}
";

/// `conv1d` (causal with dilation, `same` with strides, `valid` without bias) and the 1-D pools.
const SEQUENCE_WINDOWS: &str = r"
model Windows(x: f32[N, 12, 3]) -> f32[N, 4] {
    let a = x |> conv1d(4, 3, padding: causal, dilation: 2, activation: relu) |> conv1d(5, 2, strides: 2, padding: same) |> max_pool1d(pool: 2, padding: same) |> avg_pool1d(pool: 2, strides: 1, padding: same)
    let b = x |> conv1d(5, 3, use_bias: false, activation: tanh) |> avg_pool1d(3, strides: 2) |> max_pool1d(2, strides: 1)
    let ga = a |> global_avg_pool1d()
    let gb = b |> global_max_pool1d()
    concat(ga, gb) |> dense(4)
}
";

/// `depthwise_conv2d` with a multiplier, `same` padding, strides, dilation, no bias.
const DEPTHWISE: &str = r"
model Depthwise(x: f32[N, 8, 8, 3]) -> f32[N, 6] {
    x |> depthwise_conv2d(3, depth_multiplier: 2, padding: same, activation: relu) |> depthwise_conv2d(2, strides: 2) |> conv2d(4, kernel: 1) |> depthwise_conv2d(2, dilation: 2, use_bias: false) |> global_avg_pool2d() |> dense(6)
}
";

/// `separable_conv2d` (multiplier, strides, `same`, dilation, no bias), `conv2d_transpose`
/// (`valid`, `same`, a kernel smaller than its stride) and `upsampling2d` (nearest and bilinear,
/// unequal factors): an encoder–decoder.
const RESAMPLING: &str = r"
model Resampling(x: f32[N, 8, 8, 3]) -> f32[N, 10, 20, 2] {
    x |> separable_conv2d(4, 3, depth_multiplier: 2, padding: same, activation: relu) |> separable_conv2d(4, 3, strides: 2, padding: same) |> separable_conv2d(3, 2, dilation: 2, use_bias: false) |> conv2d_transpose(4, 3, strides: 2, activation: relu) |> conv2d_transpose(3, 2, strides: 3, padding: same) |> conv2d_transpose(3, [3, 2], strides: [1, 2], padding: same) |> max_pool2d(3) |> upsampling2d(size: [2, 1], interpolation: bilinear) |> upsampling2d(size: [1, 2]) |> conv2d(2, kernel: 1)
}
";

/// `go_backwards`, `gru(reset_after: false)`, dropout, and `bidirectional` with each merge,
/// with and without sequences and with the wrapped layer going backwards.
const RECURRENT_OPTIONS: &str = r"
model Recurrent(tokens: i32[N, 7]) -> f32[N, 4] {
    let e = tokens |> embedding(20, 5)
    let a = e |> gru(4, return_sequences: true, go_backwards: true, reset_after: false) |> lstm(3, go_backwards: true, return_sequences: true, dropout: 0.2) |> simple_rnn(3, go_backwards: true)
    let b = e |> bidirectional(gru(3, return_sequences: true, reset_after: false), merge: sum) |> bidirectional(lstm(2, return_sequences: true, go_backwards: true), merge: concat) |> bidirectional(simple_rnn(2, return_sequences: true), merge: mul) |> bidirectional(gru(3, go_backwards: true), merge: ave)
    let c = e |> bidirectional(lstm(2, recurrent_dropout: 0.3))
    concat(a, b, c) |> dense(4)
}
";

/// Causal self-attention over position-embedded tokens, then causal cross-attention with a
/// separate key and unequal head sizes and lengths.
const ATTENTION: &str = r"
model Attention(tokens: i32[N, 6]) -> f32[N, 3] {
    let x = tokens |> embedding(20, 8) |> position_embedding(10)
    let a = multi_head_attention(x, x, heads: 2, key_dim: 3, causal: true)
    let v = x |> conv1d(5, 3)
    let k = x |> conv1d(4, 3)
    let c = multi_head_attention(a, v, k, heads: 3, key_dim: 2, value_dim: 4, dropout: 0.1, causal: true)
    let s = multi_head_attention(c, x, heads: 1, key_dim: 4)
    s |> flatten() |> dense(3)
}
";

#[test]
fn conv1d_and_the_1d_pools_export_and_run_in_tract_as_in_modelc() {
    assert_exports_equal("sequence windows", SEQUENCE_WINDOWS, 1, &[13, 17, 18]);
}

#[test]
fn depthwise_conv2d_exports_and_runs_in_tract_as_in_modelc() {
    assert_exports_equal("depthwise", DEPTHWISE, 1, &[13, 17]);
}

#[test]
fn separable_transposed_and_upsampling_layers_export_and_run_in_tract_as_in_modelc() {
    assert_exports_equal("resampling", RESAMPLING, 1, &[13, 17, 21]);
}

#[test]
fn recurrent_options_and_bidirectional_export_and_run_in_tract_as_in_modelc() {
    assert_exports_equal("recurrent options", RECURRENT_OPTIONS, 20, &[13, 17]);
}

#[test]
fn attention_and_position_embedding_export_and_run_in_tract_as_in_modelc() {
    assert_exports_equal("attention", ATTENTION, 20, &[13, 17]);
}

#[test]
fn every_layer_exports_and_runs_in_tract_as_in_modelc() {
    // Opsets 20 and 21 write gelu as ONNX `Gelu`, which tract does not run: ONNX Runtime checks
    // that form (the opt-in test below); the other opsets write its erf form.
    assert_exports_equal("every layer", EVERY_LAYER, 20, &[13, 16, 17, 18, 19]);
    assert_exports_equal("sequences", SEQUENCES, 20, &[13, 17, 21]);
    println!(
        "{} runs on tract's unoptimized model",
        onnx_check::FALLBACKS.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[test]
fn an_embedding_folded_into_each_recurrent_cell_exports_exactly() {
    let plan = compile_text(FOLDED_RNNS, false);
    assert!(
        plan.steps
            .iter()
            .filter(|s| s.op.kind().starts_with("embedded_"))
            .count()
            >= 2,
        "the fold did not fire: {:?}",
        plan.pass_log
    );
    assert_exports_equal("folded rnns", FOLDED_RNNS, 30, &[17]);
}

/// The batch stays the symbol `N`: one exported file runs at batch sizes 1 and 5 (tract types a
/// CNN over the symbol).
#[test]
fn the_batch_stays_symbolic_and_any_batch_size_runs() {
    let text = std::fs::read_to_string(root().join("specs/seed_cnn.model")).unwrap();
    let plan = compile_text(&text, false);
    let w = weights(&plan, 3);
    let bytes = export_bytes(&plan, &w, 17);
    let model = export::build(&plan, &w, &ExportOptions::default()).unwrap();
    assert_eq!(model.inputs[0].1.shape_string(), "[N, 28, 28, 1]");
    assert_eq!(model.outputs[0].1.shape_string(), "[N, 10]");
    for batch in [1, 5] {
        let inputs = batches(&plan, batch, 1, batch as u64);
        let refs: Vec<&Batch> = inputs.iter().collect();
        let theirs = run_tract_symbolic(&bytes, &refs);
        let ours = run_modelc(&plan, w.clone(), &refs);
        assert_eq!(theirs[0].shape(), &[batch, 10]);
        assert!(max_error(&theirs[0], &ours[0]) <= 1e-4);
    }
}

#[test]
fn the_same_plan_and_weights_give_the_same_bytes() {
    let text = std::fs::read_to_string(root().join("specs/seed_rnn.model")).unwrap();
    let plan = compile_text(&text, false);
    let w = weights(&plan, 9);
    let a = export_bytes(&plan, &w, 17);
    let b = export_bytes(&compile_text(&text, false), &weights(&plan, 9), 17);
    assert_eq!(a, b);
    assert_ne!(a, export_bytes(&plan, &w, 18), "the opset is in the bytes");
}

/// The seed CNN's pipeline (`reshape(8, 8, 1) |> scale(1/16) |> resize(28, 28)`) and a
/// fitted standardize, exported in front of the model: the graph takes raw rows.
#[test]
fn a_trained_plans_fitted_preprocessing_is_exported_in_front_of_the_model() {
    let text = std::fs::read_to_string(root().join("specs/seed_cnn.model")).unwrap();
    let mut plan = compile_text(&text, false);
    let step = |op| Step {
        op,
        span: Span::default(),
    };
    let steps = vec![
        step(Transform::Standardize {
            fitted: Some(Fitted {
                shift: vec![0.25],
                scale: vec![2.0],
            }),
        }),
        step(Transform::Reshape {
            shape: vec![8, 8, 1],
        }),
        step(Transform::Scale {
            factor: 1.0 / 16.0,
            offset: 0.5,
        }),
        step(Transform::Resize {
            height: 28,
            width: 28,
        }),
    ];
    plan.preprocessing = Some(steps.clone());
    let w = weights(&plan, 4);
    let bytes = export_bytes(&plan, &w, 17);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let raw = ArrayD::from_shape_vec(
        IxDyn(&[3, 64]),
        (0..192).map(|_| (rng.next_u32() % 17) as f32).collect(),
    )
    .unwrap();
    let samples = modelc::data::samples::Samples {
        features: modelc::data::samples::Features::F32(raw.clone()),
        labels: modelc::data::samples::Labels::None,
    };
    let prepared = modelc::data::transform::apply_fitted_steps(&steps, samples).unwrap();
    let modelc::data::samples::Features::F32(x) = prepared.features else {
        panic!("f32 features")
    };
    let ours = run_modelc(&plan, w.clone(), &[&Batch::F32(x)]);
    let theirs = run_tract(&bytes, &[&Batch::F32(raw)]);
    let err = max_error(&theirs[0], &ours[0]);
    assert!(err <= 1e-4, "relative error {err}");
    // Without it, the graph takes the model's declared input.
    let options = ExportOptions {
        preprocessing: false,
        ..ExportOptions::default()
    };
    let bare = export::build(&plan, &w, &options).unwrap();
    assert_eq!(bare.inputs[0].1.shape_string(), "[N, 28, 28, 1]");
    let with = export::build(&plan, &w, &ExportOptions::default()).unwrap();
    assert_eq!(with.inputs[0].1.shape_string(), "[N, 64]");
}

#[test]
fn a_preprocessing_step_across_samples_is_refused_with_its_name() {
    let text = std::fs::read_to_string(root().join("specs/series_lstm.model")).unwrap();
    let mut plan = compile_text(&text, false);
    plan.preprocessing = Some(vec![Step {
        op: Transform::MovingAverage { window: 3 },
        span: Span::default(),
    }]);
    let w = weights(&plan, 1);
    let e = export::build(&plan, &w, &ExportOptions::default())
        .err()
        .unwrap();
    let d = e.to_diagnostic();
    assert_eq!(d.code.as_str(), "E1001");
    assert!(e.to_string().contains("moving_average"), "{e}");
    assert!(format!("{d:?}").contains("--no-preprocessing"), "{d:?}");
}

/// Golden text dumps of two small exported graphs: the channels-first run with transposes at
/// its ends only, and the recurrent layer's gate layout and squeezes.
#[test]
fn small_graphs_match_their_golden_text() {
    let bless = std::env::var_os("MODELC_BLESS").is_some();
    for name in ["small_cnn", "small_rnn"] {
        let dir = root().join("tests/export");
        let text = std::fs::read_to_string(dir.join(format!("{name}.model"))).unwrap();
        let plan = compile_text(&text, false);
        let w = weights(&plan, 1);
        let model = export::build(&plan, &w, &ExportOptions::default()).unwrap();
        let got = export::text::render(&model);
        let golden = dir.join(format!("{name}.txt"));
        if bless {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        assert_eq!(got, want, "{name}: run with MODELC_BLESS=1 to regenerate");
    }
}

fn modelc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_cli_writes_the_file_and_refuses_bad_usage_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cnn.onnx");
    let o = modelc(&[
        "export",
        "specs/seed_cnn.model",
        "--random-weights",
        "1",
        "--to",
        "onnx",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    let plan = compile_text(
        &std::fs::read_to_string(root().join("specs/seed_cnn.model")).unwrap(),
        false,
    );
    let w = init_weights(&plan, 1).unwrap();
    let inputs = batches(&plan, 2, 1, 8);
    let refs: Vec<&Batch> = inputs.iter().collect();
    let err = max_error(
        &run_tract(&bytes, &refs)[0],
        &run_modelc(&plan, w, &refs)[0],
    );
    assert!(err <= 1e-4, "{err}");
    for bad in [
        &["--opset", "12"][..],
        &["--opset", "22"][..],
        &[][..], // no -o for the binary format
    ] {
        let mut args = vec!["export", "specs/seed_cnn.model", "--random-weights", "1"];
        args.extend_from_slice(bad);
        if !bad.is_empty() {
            args.extend_from_slice(&["-o", out.to_str().unwrap()]);
        }
        let o = modelc(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("E0902"),
            "{bad:?}"
        );
    }
    // The text form goes to stdout.
    let o = modelc(&[
        "export",
        "specs/linear_regression.model",
        "--random-weights",
        "1",
        "--to",
        "onnx-text",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("MatMul(x, dense/kernel)"), "{text}");
}

/// Opt-in: ONNX's checker (`full_check=True`) and ONNX Runtime on the exported seed CNN and RNN
/// and the every-layer specs (opsets 13, 17 and 21), against modelc's outputs, with the Python `MODELC_PEERS_PYTHON` names (one with `onnx` and
/// `onnxruntime` installed).
#[test]
fn onnx_checker_and_onnx_runtime_accept_the_seed_models_when_available() {
    let Some(python) = std::env::var_os("MODELC_PEERS_PYTHON") else {
        println!("skipped: MODELC_PEERS_PYTHON is not set (a Python with onnx and onnxruntime)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = |name: &str| std::fs::read_to_string(root().join(format!("specs/{name}.model")));
    let cases = [
        ("seed_cnn", spec("seed_cnn").unwrap(), 1000, 17),
        ("seed_rnn", spec("seed_rnn").unwrap(), 1000, 17),
        // ONNX `Gelu` (opset 20 on), which tract does not run, and the oldest opset.
        ("every_layer_21", EVERY_LAYER.to_string(), 20, 21),
        ("every_layer_13", EVERY_LAYER.to_string(), 20, 13),
        ("sequences_21", SEQUENCES.to_string(), 20, 21),
        ("folded_rnns", FOLDED_RNNS.to_string(), 30, 17),
        ("sequence_windows", SEQUENCE_WINDOWS.to_string(), 1, 17),
        ("depthwise", DEPTHWISE.to_string(), 1, 13),
        ("resampling", RESAMPLING.to_string(), 1, 13),
        ("resampling_21", RESAMPLING.to_string(), 1, 21),
        ("recurrent_options", RECURRENT_OPTIONS.to_string(), 20, 17),
        ("attention", ATTENTION.to_string(), 20, 21),
    ];
    for (name, text, vocab, opset) in cases {
        let plan = compile_text(&text, false);
        let w = weights(&plan, 2);
        let onnx = dir.path().join(format!("{name}.onnx"));
        std::fs::write(&onnx, export_bytes(&plan, &w, opset)).unwrap();
        let inputs = batches(&plan, 4, vocab, 6);
        let refs: Vec<&Batch> = inputs.iter().collect();
        let y = &run_modelc(&plan, w, &refs)[0];
        let x_path = dir.path().join(format!("{name}_x.npy"));
        match &inputs[0] {
            Batch::F32(a) => {
                let v: Vec<f32> = a.iter().copied().collect();
                modelc::data::npy::write_npy(&x_path, a.shape(), &v).unwrap();
            }
            Batch::I32(a) => {
                let v: Vec<f32> = a.iter().map(|&i| i as f32).collect();
                modelc::data::npy::write_npy(&x_path, a.shape(), &v).unwrap();
            }
            Batch::I64(a) => {
                let v: Vec<f32> = a.iter().map(|&i| i as f32).collect();
                modelc::data::npy::write_npy(&x_path, a.shape(), &v).unwrap();
            }
        }
        let y_path = dir.path().join(format!("{name}_y.npy"));
        let yv: Vec<f32> = y.iter().copied().collect();
        modelc::data::npy::write_npy(&y_path, y.shape(), &yv).unwrap();
        let o = Command::new(&python)
            .arg(root().join("tests/export/ort_check.py"))
            .args([&onnx, &x_path, &y_path])
            .output()
            .unwrap();
        println!("{}", String::from_utf8_lossy(&o.stdout));
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

const TWO_OUTPUTS: &str = r"
model TwoHeads(x: f32[N, 6]) -> (kind: f32[N, 3], score: f32[N, 1]) {
    let h = dense(5, activation: relu)
    (h |> dense(3, activation: softmax), h |> dense(1))
}
";

#[test]
fn a_model_with_two_outputs_exports_both_under_their_names_and_runs_as_in_modelc() {
    // tract runs the graph's two outputs, each compared with the interpreter's
    assert_exports_equal("two outputs", TWO_OUTPUTS, 1000, &[13, 17]);
    let mut plan = compile_text(TWO_OUTPUTS, false);
    assert_eq!(plan.outputs.len(), 2);
    // `modelc export` compiles through the CLI, which records the signature's names
    plan.output_names = vec!["kind".into(), "score".into()];
    let w = weights(&plan, 1);
    let model = export::build(&plan, &w, &ExportOptions::default()).unwrap();
    let names: Vec<&str> = model.outputs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["kind", "score"]);
    let shapes: Vec<String> = model.outputs.iter().map(|(_, f)| f.to_string()).collect();
    assert_eq!(shapes, ["f32[N, 3]", "f32[N, 1]"]);
    let bytes = export::encode_model(&model);
    let b = batches(&plan, 2, 1000, 3);
    let refs: Vec<&Batch> = b.iter().collect();
    let ours = run_modelc(&plan, w, &refs);
    let theirs = run_tract(&bytes, &refs);
    assert_eq!(theirs.len(), 2);
    for (a, b) in theirs.iter().zip(&ours) {
        assert!(max_error(a, b) <= 1e-5);
    }
}
