//! Helpers shared by the integration tests that run the `modelc` binary from the project root.
//! Each test binary compiles this module and uses a part of it.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

/// `modelc ARGS` run in the project root, its output captured.
pub fn modelc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

/// The stdout of a run that must have succeeded (exit 0; its stderr shown otherwise).
pub fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `modelc eval SPEC --weights WEIGHTS --split train --format json`, which must succeed, parsed.
pub fn eval_train_json(spec: &Path, weights: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&modelc(&[
        "eval",
        s(spec),
        "--weights",
        s(weights),
        "--split",
        "train",
        "--format",
        "json",
    ])))
    .unwrap()
}
