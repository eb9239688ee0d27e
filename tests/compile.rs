//! `modelc compile`: plans from every shipped spec, the passes' effect as golden IR, memory
//! figures, and the refusals (output over the input, unwritable output, tampered plans).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelc::diag::FileId;
use modelc::ir::{Op, ParamSource, Recipe, RnnCell};
use modelc::passes::{Mode, PassOptions};
use modelc::plan::{self, ExecutionPlan};
use modelc::syntax::{parse, Limits};
use std::path::Path;
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn modelc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

fn compile_file(path: &Path, mode: Mode, options: &PassOptions) -> ExecutionPlan {
    let text = std::fs::read_to_string(path).unwrap();
    let parsed = parse(FileId::default(), &text, &Limits::default());
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let checked = modelc::check::check_file(FileId::default(), &parsed.file);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let graph = modelc::ir::lower(&checked.models[0]).unwrap();
    plan::compile(graph, mode, options, plan::spec_hash(text.as_bytes())).unwrap()
}

#[test]
fn every_shipped_spec_compiles_in_both_modes_and_round_trips() {
    for entry in std::fs::read_dir(root().join("specs")).unwrap() {
        let path = entry.unwrap().path();
        for mode in [Mode::Infer, Mode::Train] {
            for options in [
                PassOptions::default(),
                PassOptions {
                    no_optimize: true,
                    ..PassOptions::default()
                },
            ] {
                let p = compile_file(&path, mode, &options);
                let text = p.to_ron().unwrap();
                let back = ExecutionPlan::from_ron(&text).unwrap();
                assert_eq!(back, p, "{}", path.display());
                assert_eq!(back.to_ron().unwrap(), text);
            }
        }
    }
}

#[test]
fn seed_cnn_plan_logs_fusions_and_reuses_buffers() {
    let out = tempfile::tempdir().unwrap();
    let plan_path = out.path().join("cnn.plan.ron");
    let o = modelc(&[
        "compile",
        "specs/seed_cnn.model",
        "-o",
        plan_path.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let p = ExecutionPlan::from_ron(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    for fused in [
        "conv2d + relu fused",
        "conv2d_1 + relu fused",
        "conv2d_2 + relu fused",
        "dense + relu fused",
    ] {
        assert!(
            p.pass_log.iter().any(|l| l == fused),
            "{fused} missing from {:?}",
            p.pass_log
        );
    }
    // One buffer per value: 784+21632+5408+7744+1600+1152+128+128+128+10+10 floats per sample.
    assert_eq!(p.memory.one_buffer_per_value_bytes_per_sample, 4 * 38_724);
    // Each conv runs fused with its pool (its output exists only as per-thread tiles), so
    // liveness reuse keeps two buffers, the largest pair alive at once being the first two
    // pool outputs.
    assert_eq!(
        p.steps.iter().filter(|s| s.fused_with_next).count(),
        3,
        "{:?}",
        p.pass_log
    );
    assert_eq!(p.memory.peak_bytes_per_sample, 4 * (5_408 + 1_600));
    // Issue 4: buffers and every thread's scratch at batch 64 on 2 threads are at least 40%
    // below one buffer per value.
    let naive = 64 * p.memory.one_buffer_per_value_bytes_per_sample;
    assert!(p.memory.total_bytes(64, 2) * 10 <= naive * 6);
}

#[test]
fn conv_batch_norm_relu_folds_into_fewer_steps_than_o0() {
    let path = root().join("tests/passes/fold_batch_norm.model");
    let o0 = compile_file(
        &path,
        Mode::Infer,
        &PassOptions {
            no_optimize: true,
            ..PassOptions::default()
        },
    );
    let opt = compile_file(&path, Mode::Infer, &PassOptions::default());
    assert!(
        opt.steps.len() < o0.steps.len(),
        "{} vs {}",
        opt.steps.len(),
        o0.steps.len()
    );
    assert!(
        opt.pass_log
            .iter()
            .any(|l| l == "batch_norm folded into conv2d"),
        "{:?}",
        opt.pass_log
    );
    // The training plan keeps the batch norm.
    let train = compile_file(&path, Mode::Train, &PassOptions::default());
    assert!(train.steps.iter().any(|s| s.op.kind() == "batch_norm"));
}

fn compile_text(text: &str, mode: Mode, options: &PassOptions) -> ExecutionPlan {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.model");
    std::fs::write(&path, text).unwrap();
    compile_file(&path, mode, options)
}

fn kinds(p: &ExecutionPlan) -> Vec<&'static str> {
    p.steps.iter().map(|s| s.op.kind()).collect()
}

#[test]
fn seed_rnn_folds_its_embedding_into_the_first_lstm() {
    let path = root().join("specs/seed_rnn.model");
    let p = compile_file(&path, Mode::Infer, &PassOptions::default());
    assert_eq!(kinds(&p), ["embedded_lstm", "lstm", "dense", "softmax"]);
    let Op::EmbeddedRnn {
        cell: RnnCell::Lstm,
        units: 64,
        return_sequences: true,
        projection,
        ..
    } = p.steps[0].op
    else {
        panic!("{:?}", p.steps[0].op)
    };
    assert_eq!(p.steps[0].inputs, p.inputs, "the step reads the token ids");
    let table = &p.params[projection.index()];
    assert_eq!(table.name, "embedding.embeddings+lstm");
    assert_eq!(table.shape, [1000, 256]);
    let ParamSource::Derived(Recipe::EmbeddingProjection {
        table: e,
        kernel,
        bias,
    }) = &table.source
    else {
        panic!("{:?}", table.source)
    };
    let names = [e, kernel, bias].map(|id| p.params[id.index()].name.as_str());
    assert_eq!(names, ["embedding.embeddings", "lstm.kernel", "lstm.bias"]);
    assert!(
        p.pass_log
            .iter()
            .any(|l| l == "embedding folded into lstm's input projection"),
        "{:?}",
        p.pass_log
    );
    // The weights file is the model's: every stored tensor is still read, none is added.
    let stored = p
        .params
        .iter()
        .filter(|q| q.source == ParamSource::Stored)
        .count();
    assert_eq!(stored, 9);

    // Training keeps the embedding, and so does switching the pass off.
    let train = compile_file(&path, Mode::Train, &PassOptions::default());
    assert_eq!(
        kinds(&train),
        ["embedding", "lstm", "lstm", "dense", "softmax"]
    );
    let off = PassOptions {
        disabled: vec!["fold-embedding-projection".into()],
        ..PassOptions::default()
    };
    let plain = compile_file(&path, Mode::Infer, &off);
    assert_eq!(
        kinds(&plain),
        ["embedding", "lstm", "lstm", "dense", "softmax"]
    );
    assert!(plain.params.iter().all(|q| q.source == ParamSource::Stored));

    // The same from the command line.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rnn.plan.ron");
    let o = modelc(&[
        "compile",
        "specs/seed_rnn.model",
        "--disable-pass",
        "fold-embedding-projection",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let from_cli = ExecutionPlan::from_ron(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(kinds(&from_cli), kinds(&plain));
    let o = modelc(&["compile", "--list-passes", "specs/seed_rnn.model"]);
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("fuse-activation\nfold-embedding-projection\neliminate-dead-nodes\n"));
}

#[test]
fn a_shared_or_oversized_embedding_keeps_the_plain_path() {
    let shared = "model Two(tokens: i32[N, 5]) -> f32[N, 6] {
    let e = tokens |> embedding(20, 4)
    let a = e |> lstm(3)
    let b = e |> gru(3)
    concat(a, b)
}
";
    let p = compile_text(shared, Mode::Infer, &PassOptions::default());
    assert_eq!(
        kinds(&p).iter().filter(|k| **k == "embedding").count(),
        1,
        "{:?}",
        kinds(&p)
    );
    assert!(!kinds(&p).iter().any(|k| k.starts_with("embedded")));
    // An LSTM of 256 units: a projection row is 1 KiB, so a vocabulary of 64 Ki tokens is the
    // largest table folded, and a 50k-word vocabulary at 512 units is not.
    assert_eq!(modelc::passes::MAX_PROJECTION_BYTES, 64 << 20);
    for (vocab, units, folded) in [
        (16_384, 256, true),
        (16_385, 256, false),
        (50_000, 512, false),
    ] {
        let text = format!(
            "model Big(tokens: i32[N, 5]) -> f32[N, {units}] {{\n    embedding({vocab}, 64)\n    lstm({units})\n}}\n"
        );
        let p = compile_text(&text, Mode::Infer, &PassOptions::default());
        let want: &[&str] = if folded {
            &["embedded_lstm"]
        } else {
            &["embedding", "lstm"]
        };
        assert_eq!(kinds(&p), want, "vocab {vocab}, units {units}");
    }
}

/// Golden IR before and after the passes for each `tests/passes/*.model`
/// (`MODELC_BLESS=1` rewrites them).
#[test]
fn pass_goldens() {
    let bless = std::env::var_os("MODELC_BLESS").is_some();
    let mut failures = Vec::new();
    let mut cases: Vec<_> = std::fs::read_dir(root().join("tests/passes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    let mut count = 0;
    for case in cases
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "model"))
    {
        count += 1;
        for (suffix, mode, options) in [
            (
                "before.ir",
                Mode::Infer,
                PassOptions {
                    no_optimize: true,
                    ..PassOptions::default()
                },
            ),
            ("infer.ir", Mode::Infer, PassOptions::default()),
            ("train.ir", Mode::Train, PassOptions::default()),
        ] {
            let p = compile_file(case, mode, &options);
            let mut text = modelc::ir::print(&p.to_graph());
            for line in &p.pass_log {
                text.push_str("// ");
                text.push_str(line);
                text.push('\n');
            }
            let golden = case.with_extension(suffix);
            if bless {
                std::fs::write(&golden, &text).unwrap();
            } else if std::fs::read_to_string(&golden).unwrap_or_default() != text {
                failures.push(format!("{}:\n{text}", golden.display()));
            }
        }
    }
    assert!(count >= 4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn output_equal_to_input() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("m.model");
    std::fs::copy(root().join("specs/seed_cnn.model"), &spec).unwrap();
    let before = std::fs::read(&spec).unwrap();
    let o = modelc(&[
        "compile",
        spec.to_str().unwrap(),
        "-o",
        spec.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("error[E0903]"));
    assert_eq!(
        std::fs::read(&spec).unwrap(),
        before,
        "the spec was changed"
    );
}

#[test]
fn unwritable_output() {
    let o = modelc(&[
        "compile",
        "specs/seed_cnn.model",
        "-o",
        "/nonexistent-folder/cnn.plan.ron",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("error[E0901]"));
}

#[test]
fn unsupported_construct() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("m.model");
    std::fs::write(
        &spec,
        "model M(x: f32[N, 4, 5]) {\n    softmax(axis: 1)\n}\n",
    )
    .unwrap();
    let o = modelc(&["compile", spec.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("error[E1000]"));
}

#[test]
fn unknown_pass_and_model_names_are_usage_errors() {
    let o = modelc(&[
        "compile",
        "specs/seed_cnn.model",
        "--disable-pass",
        "fold-batchnorm",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean `fold-batch-norm`?"));
    let o = modelc(&["compile", "specs/seed_cnn.model", "--model", "SeedCn"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean `SeedCnn`?"));
    let o = modelc(&["compile", "--list-passes", "specs/seed_cnn.model"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("remove-dropout\n"));
}

/// Issue 15: the shipped 1-D CNN's convolutions compute their elu in the same step, in the
/// inference plan and in the training plan (elu's derivative comes from its output).
#[test]
fn sunspots_conv1d_fuses_each_elu_into_its_conv1d() {
    let path = root().join("specs/sunspots_conv1d.model");
    for mode in [Mode::Infer, Mode::Train] {
        let p = compile_file(&path, mode, &PassOptions::default());
        for fused in [
            "conv1d + elu fused",
            "conv1d_1 + elu fused",
            "conv1d_2 + elu fused",
        ] {
            assert!(
                p.pass_log.iter().any(|l| l == fused),
                "{fused}: {:?}",
                p.pass_log
            );
        }
        assert_eq!(
            kinds(&p),
            ["conv1d", "conv1d", "conv1d", "flatten", "dense"],
            "{mode:?}"
        );
    }
}
