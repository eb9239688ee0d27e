//! `modelc run`, `bench`, `inspect` and `data` end to end: the real binary on real files.
//! Expected values come from hand computation (a one-unit dense layer), from the library's own
//! interpreter on the same plan and weights, and from the digits data set's known sizes.

// Test code: a failed unwrap is a failed test; outputs are compared bit for bit on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp
)]

use modelc::data::npy::{read_npy, write_npy, NpyData};
use modelc::plan::ExecutionPlan;
use modelc::runtime::interp::{Interpreter, TensorRef};
use modelc::runtime::weights::{init_weights, save_weights, Weights};
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TINY: &str = "model Tiny(x: f32[N, 2]) -> f32[N, 1] {\n    dense(1)\n}\n";

fn modelc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Compiles a spec with the binary and reads the plan back through the library.
fn compile(spec: &str, dir: &Path) -> (PathBuf, ExecutionPlan) {
    let path = dir.join("plan.ron");
    let o = modelc(&["compile", spec, "-o", s(&path)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let plan = ExecutionPlan::from_ron(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, plan)
}

/// The tiny spec with kernel [[2], [3]] and bias [1], so y = 2·x0 + 3·x1 + 1.
fn tiny_setup(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let spec = dir.join("tiny.model");
    std::fs::write(&spec, TINY).unwrap();
    let (_, plan) = compile(s(&spec), dir);
    let weights = Weights::from_named(
        &plan,
        vec![
            (
                "dense.kernel".into(),
                ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![2.0, 3.0]).unwrap(),
            ),
            (
                "dense.bias".into(),
                ArrayD::from_shape_vec(IxDyn(&[1]), vec![1.0]).unwrap(),
            ),
        ],
    )
    .unwrap();
    let w = dir.join("tiny.safetensors");
    save_weights(&w, &weights).unwrap();
    let x = dir.join("x.npy");
    write_npy(&x, &[3, 2], &[1.0, 1.0, 0.0, -1.0, 0.5, 2.0]).unwrap();
    (spec, w, x)
}

fn read_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let a = read_npy(&std::fs::read(path).unwrap()).unwrap();
    let NpyData::F32(v) = a.data else {
        panic!("not f32")
    };
    (a.shape, v)
}

#[test]
fn run_a_model_file_computes_the_hand_checked_dense_layer() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, w, x) = tiny_setup(dir.path());
    let y = dir.path().join("y.npy");
    let o = modelc(&[
        "run",
        s(&spec),
        "--weights",
        s(&w),
        "--input",
        s(&x),
        "-o",
        s(&y),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // 2·1 + 3·1 + 1, 2·0 − 3 + 1, 2·0.5 + 3·2 + 1
    assert_eq!(read_f32(&y), (vec![3, 1], vec![6.0, -2.0, 8.0]));

    let o = modelc(&[
        "run",
        s(&spec),
        "--weights",
        s(&w),
        "--input",
        s(&x),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["outputs"][0]["shape"], serde_json::json!([3, 1]));
    assert_eq!(
        json["outputs"][0]["values"],
        serde_json::json!([[6.0], [-2.0], [8.0]])
    );

    let o = modelc(&["run", s(&spec), "--weights", s(&w), "--input", s(&x)]);
    assert_eq!(o.status.code(), Some(0));
    let shown = text(&o.stdout);
    assert!(
        shown.contains("[[ 6.000000],\n [-2.000000],\n [ 8.000000]]"),
        "{shown}"
    );
}

#[test]
fn run_a_plan_matches_the_library_interpreter_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (plan_path, plan) = compile("specs/seed_cnn.model", dir.path());
    let weights = init_weights(&plan, 11).unwrap();
    let w = dir.path().join("w.safetensors");
    save_weights(&w, &weights).unwrap();
    let values: Vec<f32> = (0..3 * 28 * 28)
        .map(|i| ((i * 37) % 101) as f32 / 101.0)
        .collect();
    let x = dir.path().join("x.npy");
    write_npy(&x, &[3, 28, 28, 1], &values).unwrap();
    let y = dir.path().join("y.npy");
    // The plan carries the pipeline's steps; `--model-input` feeds model-shaped arrays.
    let o = modelc(&[
        "run",
        s(&plan_path),
        "--weights",
        s(&w),
        "--input",
        s(&x),
        "--model-input",
        "-o",
        s(&y),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let input = ArrayD::from_shape_vec(IxDyn(&[3, 28, 28, 1]), values).unwrap();
    let expected = Interpreter::new(&plan, weights)
        .unwrap()
        .run(&[TensorRef::F32(input.view())])
        .unwrap();
    let (shape, got) = read_f32(&y);
    assert_eq!(shape, vec![3, 10]);
    assert_eq!(got, expected[0].iter().copied().collect::<Vec<_>>());
    // Softmax rows sum to one: the output is the model's, not zeros.
    assert!((got[..10].iter().sum::<f32>() - 1.0).abs() < 1e-5);

    // The spec run directly, with the same fresh weights, gives the same numbers.
    let o = modelc(&[
        "run",
        "specs/seed_cnn.model",
        "--random-weights",
        "11",
        "--input",
        s(&x),
        "--model-input",
        "-o",
        s(&y),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(read_f32(&y).1, got);
}

#[test]
fn run_refuses_bad_inputs_with_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, w, x) = tiny_setup(dir.path());
    let code = |o: &Output| o.status.code();

    let wrong_shape = dir.path().join("shape.npy");
    write_npy(&wrong_shape, &[2, 3], &[0.0; 6]).unwrap();
    let o = modelc(&[
        "run",
        s(&spec),
        "--weights",
        s(&w),
        "--input",
        s(&wrong_shape),
    ]);
    assert_eq!(code(&o), Some(1));
    assert!(
        text(&o.stderr).contains("error[E0802]"),
        "{}",
        text(&o.stderr)
    );

    // float64 is converted with a note (tests/cli_run_inputs.rs); int64 ids for an f32 input
    // are refused.
    let wrong_dtype = dir.path().join("i8.npy");
    std::fs::copy("tests/fixtures/data/x_i8.npy", &wrong_dtype).unwrap();
    let o = modelc(&[
        "run",
        s(&spec),
        "--weights",
        s(&w),
        "--input",
        s(&wrong_dtype),
    ]);
    assert_eq!(code(&o), Some(1));
    assert!(
        text(&o.stderr).contains("error[E0801]"),
        "{}",
        text(&o.stderr)
    );

    let missing = dir.path().join("missing.safetensors");
    let o = modelc(&["run", s(&spec), "--weights", s(&missing), "--input", s(&x)]);
    assert_eq!(code(&o), Some(2));
    assert!(
        text(&o.stderr).contains("error[E0900]"),
        "{}",
        text(&o.stderr)
    );

    let o = modelc(&["run", s(&spec), "--input", s(&x)]);
    assert_eq!(code(&o), Some(2));
    assert!(
        text(&o.stderr).contains("--random-weights"),
        "{}",
        text(&o.stderr)
    );

    let before = std::fs::read(&x).unwrap();
    let o = modelc(&[
        "run",
        s(&spec),
        "--weights",
        s(&w),
        "--input",
        s(&x),
        "-o",
        s(&x),
    ]);
    assert_eq!(code(&o), Some(2));
    assert!(
        text(&o.stderr).contains("error[E0903]"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        std::fs::read(&x).unwrap(),
        before,
        "the input was overwritten"
    );

    // JSON mode stays JSON on failure.
    let o = modelc(&[
        "run",
        s(&spec),
        "--weights",
        s(&missing),
        "--input",
        s(&x),
        "--format",
        "json",
    ]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["code"], "E0900");
}

/// The seed CNN's plan with the first conv's recorded output channels changed from 32 to 31.
fn tampered_plan(dir: &Path) -> PathBuf {
    let (plan_path, _) = compile("specs/seed_cnn.model", dir);
    let ron = std::fs::read_to_string(&plan_path).unwrap();
    let bad = ron.replacen(
        "Known(26), Known(26), Known(32)",
        "Known(26), Known(26), Known(31)",
        1,
    );
    assert_ne!(bad, ron);
    let path = dir.join("tampered.ron");
    std::fs::write(&path, bad).unwrap();
    path
}

#[test]
fn run_and_inspect_refuse_a_tampered_plan() {
    let dir = tempfile::tempdir().unwrap();
    let bad = tampered_plan(dir.path());
    let x = dir.path().join("x.npy");
    write_npy(&x, &[1, 28, 28, 1], &[0.5; 784]).unwrap();
    let o = modelc(&["run", s(&bad), "--random-weights", "1", "--input", s(&x)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("error[E0702]"),
        "{}",
        text(&o.stderr)
    );
    let o = modelc(&["inspect", s(&bad)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("error[E0702]"),
        "{}",
        text(&o.stderr)
    );
    let o = modelc(&["inspect", s(&dir.path().join("none.ron"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("error[E0900]"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn inspect_shows_steps_memory_figures_and_the_pass_log() {
    let dir = tempfile::tempdir().unwrap();
    let (plan_path, plan) = compile("specs/seed_cnn.model", dir.path());
    let o = modelc(&["inspect", s(&plan_path), "--batch", "8"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let shown = text(&o.stdout);
    let m = &plan.memory;
    for needle in [
        "model      SeedCnn".to_string(),
        "pass log:".to_string(),
        "  - conv2d + relu fused".to_string(),
        format!("planned:               {} bytes", m.peak_bytes_per_sample),
        format!("{} bytes", m.peak_bytes_per_sample * 8),
        format!(
            "one buffer per value:  {} bytes",
            m.one_buffer_per_value_bytes_per_sample
        ),
        format!("{} bytes", m.one_buffer_per_value_bytes_per_sample * 8),
        "flatten            max_pool2d_2 → f32[N, 128]  [b1] view".to_string(),
        "conv2d_1        conv2d             max_pool2d → f32[N, 11, 11, 64]  [tile] fused"
            .to_string(),
        format!(
            "scratch (fused steps): {} bytes",
            m.scratch_bytes_per_thread
        ),
        "  - conv2d_1 + max_pool2d_1 fused".to_string(),
        "conv2d.kernel".to_string(),
    ] {
        assert!(shown.contains(&needle), "missing {needle:?} in\n{shown}");
    }
    let o = modelc(&["inspect", s(&plan_path), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        json["memory"]["peak_bytes_batch"],
        m.peak_bytes_per_sample * 64
    );
    assert_eq!(
        json["memory"]["scratch_bytes_per_thread"],
        m.scratch_bytes_per_thread
    );
    assert!(m.scratch_bytes_per_thread > 0);
    assert_eq!(json["param_count"], 110_474);
    assert_eq!(json["steps"].as_array().unwrap().len(), plan.steps.len());
}

#[test]
fn bench_reports_throughput_as_json_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("tiny.model");
    std::fs::write(&spec, TINY).unwrap();
    for mode in ["infer", "train"] {
        let o = modelc(&[
            "bench",
            s(&spec),
            "--batch",
            "4",
            "--iterations",
            "2",
            "--threads",
            "1",
            "--mode",
            mode,
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["mode"], mode);
        assert_eq!(j["batch"], 4);
        assert_eq!(j["threads"], 1);
        assert_eq!(j["model"], "Tiny");
        for key in ["samples_per_sec", "ms_per_batch", "gflops"] {
            let v = j[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key} missing: {j}"));
            assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
        }
        // Resident memory (Linux): the peak is at least the baseline, and the difference is
        // what the JSON says it is.
        if let Some(peak) = j["peak_rss_bytes"].as_u64() {
            let baseline = j["baseline_rss_bytes"].as_u64().unwrap();
            assert!(baseline > 0 && peak >= baseline, "{j}");
            assert_eq!(
                j["peak_above_baseline_bytes"].as_u64(),
                Some(peak - baseline)
            );
            assert!(j["peak_since_process_start"].is_boolean(), "{j}");
        } else if cfg!(target_os = "linux") {
            panic!("no peak_rss_bytes on Linux: {j}");
        }
        let per_batch = j["ms_per_batch"].as_f64().unwrap();
        let rate = j["samples_per_sec"].as_f64().unwrap();
        if per_batch > 0.0 {
            assert!((rate * per_batch / 1e3 - 4.0).abs() < 1e-6 * rate.max(1.0));
        }
    }
}

#[test]
fn data_stats_and_preview_of_the_digits_pipeline() {
    let o = modelc(&["data", "stats", "specs/seed_cnn.model", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["name"], "Digits");
    assert_eq!(j["train"]["samples"], 1438);
    assert_eq!(j["validation"]["samples"], 359);
    assert_eq!(j["train"]["shape"], serde_json::json!([28, 28, 1]));
    let counts = |split: &str| -> Vec<u64> {
        j[split]["class_counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect()
    };
    assert_eq!(counts("train").len(), 10);
    assert_eq!(
        counts("train")
            .iter()
            .chain(&counts("validation"))
            .sum::<u64>(),
        1797
    );

    let o = modelc(&["data", "stats", "specs/seed_cnn.model", "--data", "Digit"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("Digits"), "{}", text(&o.stderr));

    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("grid.png");
    let o = modelc(&[
        "data",
        "preview",
        "specs/seed_cnn.model",
        "-o",
        s(&png),
        "--count",
        "4",
        "--epoch",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    // 2×2 cells of 28·4 pixels with 2-pixel gaps: 2·(112 + 2) + 2 = 230 wide; each cell also
    // has a 12-pixel strip for its label (5 font pixels drawn 2×2, and a gap): 230 + 2·12 high.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (230, 254));
}
