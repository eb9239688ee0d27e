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

#[test]
fn recurrent_options_report_keras_param_counts() {
    let dir = std::env::temp_dir().join(format!("modelc-summary-rnn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("options.model");
    std::fs::write(
        &spec,
        "model Options(x: f32[N, 20, 8]) {\n    gru(6, return_sequences: true, reset_after: false)\n    gru(6, return_sequences: true, go_backwards: true)\n    lstm(5, dropout: 0.2, recurrent_dropout: 0.1, return_sequences: true)\n    simple_rnn(4, go_backwards: true)\n}\n",
    )
    .unwrap();
    let (status, stdout, stderr) = summary(&[spec.to_str().unwrap(), "--format", "json"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(status, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let layers = v["layers"].as_array().unwrap();
    // Keras: GRU(6, reset_after=False) on 8 features: 3·(8·6 + 6·6 + 6) = 270; the default
    // (two biases) on 6 features: 3·(6·6 + 6·6 + 2·6) = 252; LSTM(5) on 6: 4·(6·5 + 5·5 + 5)
    // = 240; SimpleRNN(4) on 5: 5·4 + 4·4 + 4 = 40.
    let params: Vec<u64> = layers
        .iter()
        .map(|l| l["params"].as_u64().unwrap())
        .collect();
    assert_eq!(params, [270, 252, 240, 40]);
    assert_eq!(layers[1]["output_shape"], serde_json::json!(["N", 20, 6]));
    assert_eq!(layers[3]["output_shape"], serde_json::json!(["N", 4]));
}

#[test]
fn text_bilstm_reports_keras_bidirectional_counts() {
    let (status, stdout, stderr) = summary(&["specs/text_bilstm.model", "--format", "json"]);
    assert_eq!(status, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers[1]["name"], "bidirectional");
    // Keras: Bidirectional(LSTM(32)) on 32 features: 2 · 4·32·(32 + 32 + 1) = 16,640, and
    // the two final states concatenated.
    assert_eq!(layers[1]["params"], 16_640);
    assert_eq!(layers[1]["output_shape"], serde_json::json!(["N", 64]));
    assert_eq!(v["total_params"], 49_290);
}
