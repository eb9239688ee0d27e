//! `modelc summary` end to end: the binary's JSON output parses and reports Keras's counts.
#![allow(clippy::unwrap_used)] // a test helper: a failure to run the binary should fail the test

use std::process::Command;

fn summary(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--color", "never", "summary"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn seed_cnn_json_reports_keras_param_count() {
    let (status, stdout, _) = summary(&["specs/seed_cnn.model", "--format", "json"]);
    assert_eq!(status, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["model"], "SeedCnn");
    assert_eq!(v["total_params"], 110_474);
    assert_eq!(v["trainable_params"], 110_474);
    assert_eq!(v["non_trainable_params"], 0);
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 9);
    assert_eq!(layers[0]["name"], "conv2d");
    assert_eq!(
        layers[0]["output_shape"],
        serde_json::json!(["N", 26, 26, 32])
    );
    assert_eq!(layers[0]["params"], 320);
    // 26*26 positions * 32 filters * (2*3*3*1 + 1 bias).
    assert_eq!(layers[0]["flops"], 26 * 26 * 32 * 19);
}

#[test]
fn seed_rnn_human_table_and_model_flag() {
    let (status, stdout, _) = summary(&["specs/seed_rnn.model", "--model", "SeedRnn"]);
    assert_eq!(status, 0);
    assert!(stdout.contains("Total params: 130,698"), "{stdout}");
    assert!(stdout.contains("[N, 100, 64]"), "{stdout}");
}

/// Issue 15: Keras's counts for Conv1D (`k·in·filters + filters`) in the shipped 1-D CNN.
#[test]
fn sunspots_conv1d_has_keras_parameter_counts() {
    let (status, stdout, _) = summary(&["specs/sunspots_conv1d.model"]);
    assert_eq!(status, 0);
    for line in [
        "conv1d    conv1d   [N, 16, 16]       64",
        "conv1d_1  conv1d   [N, 16, 16]      784",
        "flatten   flatten  [N, 256]           0",
        "Total params: 1,889",
    ] {
        assert!(stdout.contains(line), "{line} missing from\n{stdout}");
    }
}

#[test]
fn unknown_model_and_spec_errors_exit_1() {
    let (status, _, stderr) = summary(&["specs/seed_rnn.model", "--model", "SeedRn"]);
    assert_eq!(status, 1);
    assert!(stderr.contains("did you mean `SeedRnn`?"), "{stderr}");
    let (status, _, stderr) = summary(&["tests/ui/shapes/window_too_large.model"]);
    assert_eq!(status, 1);
    assert!(stderr.contains("E0402"), "{stderr}");
}

#[test]
fn missing_file_is_exit_2() {
    let (status, _, _) = summary(&["no/such/file.model", "--format", "json"]);
    assert_eq!(status, 2);
}
