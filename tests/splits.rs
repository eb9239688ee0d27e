//! `split validation:, test:, stratify:` end to end: the held-out test rows are neither trained
//! nor validated on, and `modelc eval --split test` measures the trained weights on them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

const SPEC: &str = "tests/fixtures/train/test_split.model";

fn modelc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

fn eval(spec: &str, weights: &Path, split: &str) -> Output {
    modelc(&[
        "eval",
        spec,
        "--weights",
        weights.to_str().unwrap(),
        "--split",
        split,
        "--format",
        "json",
    ])
}

fn json(o: &Output) -> serde_json::Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn eval_measures_each_split_of_the_spec_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let o = modelc(&[
        "train",
        SPEC,
        "--format",
        "json",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last_epoch = lines
        .iter()
        .rev()
        .find(|l| l.get("epoch").is_some())
        .unwrap();
    let weights = dir.path().join("weights.safetensors");
    // 200 samples: round(200 · 0.2) = 40 validation, round(200 · 0.15) = 30 test, 130 train.
    let test = json(&eval(SPEC, &weights, "test"));
    let validation = json(&eval(SPEC, &weights, "validation"));
    let train = json(&eval(SPEC, &weights, "train"));
    assert_eq!(
        (&test["samples"], &validation["samples"], &train["samples"]),
        (&30.into(), &40.into(), &130.into())
    );
    // The validation split is the one training validated on.
    let close = |a: &serde_json::Value, b: &serde_json::Value| {
        (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9
    };
    assert!(close(&validation["loss"], &last_epoch["val_loss"]));
    assert!(close(&validation["accuracy"], &last_epoch["val_accuracy"]));
    // The test accuracy counts whole samples out of 30, and the split is not the validation one.
    let correct = test["accuracy"].as_f64().unwrap() * 30.0;
    assert!((correct - correct.round()).abs() < 1e-4, "{test}");
    assert!(!close(&test["loss"], &validation["loss"]));
}

#[test]
fn eval_of_a_test_split_the_pipeline_lacks_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC)).unwrap();
    let text = text.replace("test: 0.15, ", "");
    let spec = dir.path().join("spec.model");
    std::fs::write(&spec, text).unwrap();
    let out = dir.path().join("run");
    let spec = spec.to_str().unwrap();
    let o = modelc(&["train", spec, "--out", out.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = eval(spec, &out.join("weights.safetensors"), "test");
    assert_eq!(o.status.code(), Some(2));
    // With `--format json` the diagnostic is a JSON line on stdout.
    let err = String::from_utf8_lossy(&o.stdout);
    assert!(err.contains("split test: 0.2"), "{err}");
}
