//! Early stopping end to end: the run stops after `patience` epochs without improvement, reports
//! the best epoch (found independently here from the per-epoch JSON lines), and with
//! `restore_best` (the default) its weights equal the save-best checkpoint's bit for bit, also
//! when the run was resumed; with `restore_best: false` they are the last epoch's.

// Test code: a failed unwrap is a failed test; weights are compared bit for bit on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_cmp)]

use std::path::Path;
use std::process::{Command, Output};

const SPEC: &str = "tests/fixtures/train/early_stopping.model";

fn modelc(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Trains `spec` into `out` with JSON output; returns the JSON lines.
fn train(spec: &str, out: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "train",
        spec,
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = modelc(&args);
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The tensors of a safetensors file by name, as raw bytes.
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect();
    out.sort();
    out
}

/// The weights file's tensors, each looked up in another file.
fn weights_equal(weights: &Path, other: &Path) -> bool {
    let theirs = tensors(other);
    tensors(weights)
        .iter()
        .all(|(name, data)| theirs.iter().any(|(n, d)| n == name && d == data))
}

#[test]
fn the_best_epoch_is_reported_and_its_weights_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let lines = train(SPEC, dir.path(), &[]);
    let (summary, epochs) = lines.split_last().unwrap();
    assert_eq!(summary["end"], "early_stopped", "{summary}");
    // The best epoch by hand: the first epoch with the highest validation accuracy.
    let mut best = (0, f64::MIN);
    for e in epochs {
        let acc = e["val_accuracy"].as_f64().unwrap();
        if acc > best.1 {
            best = (e["epoch"].as_u64().unwrap(), acc);
        }
    }
    let last = epochs.last().unwrap()["epoch"].as_u64().unwrap();
    assert!(best.0 < last, "the fixture must stop after its best epoch");
    assert_eq!(last - best.0, 2, "patience 2");
    assert_eq!(summary["best"]["epoch"], best.0);
    assert_eq!(summary["best"]["value"].as_f64().unwrap(), best.1);
    assert_eq!(summary["best"]["restored"], true);
    let weights = dir.path().join("weights.safetensors");
    assert!(weights_equal(
        &weights,
        &dir.path().join("best.safetensors")
    ));
    assert!(!weights_equal(
        &weights,
        &dir.path().join("checkpoint.safetensors")
    ));
}

#[test]
fn without_restore_best_the_last_epoch_is_kept() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC)).unwrap();
    let text = text.replace("patience: 2", "patience: 2, restore_best: false");
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.model");
    std::fs::write(&spec, text).unwrap();
    let out = dir.path().join("run");
    let lines = train(spec.to_str().unwrap(), &out, &[]);
    let summary = lines.last().unwrap();
    assert_eq!(summary["best"]["restored"], false, "{summary}");
    let weights = out.join("weights.safetensors");
    assert!(weights_equal(&weights, &out.join("checkpoint.safetensors")));
    assert!(!weights_equal(&weights, &out.join("best.safetensors")));
}

#[test]
fn a_resumed_run_restores_the_best_epoch_from_its_save_best_checkpoint() {
    let whole = tempfile::tempdir().unwrap();
    train(SPEC, whole.path(), &[]);
    let parts = tempfile::tempdir().unwrap();
    train(SPEC, parts.path(), &["--epochs", "4"]);
    train(SPEC, parts.path(), &["--resume"]);
    let a = tensors(&whole.path().join("weights.safetensors"));
    let b = tensors(&parts.path().join("weights.safetensors"));
    assert_eq!(a, b, "resumed and whole runs end with the same weights");
}
