//! Learning-rate schedules end to end: the rate each epoch of a `warmup |> reduce_on_plateau`
//! chain against a hand trace of Keras's rule, and a run resumed in the middle of a cooldown
//! ending with the whole run's weights bit for bit (the rule's state is in the checkpoint).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

const SPEC: &str = "tests/fixtures/train/plateau.model";

/// Trains `spec` into `out` with JSON output; returns the per-epoch lines.
fn train(out: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "train",
        SPEC,
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("epoch").is_some())
        .collect()
}

#[test]
fn the_rate_follows_the_warmup_then_the_plateau_rule() {
    let dir = tempfile::tempdir().unwrap();
    let epochs = train(dir.path(), &[]);
    let rates: Vec<f64> = epochs.iter().map(|e| e["lr"].as_f64().unwrap()).collect();
    // 64 samples in batches of 16: 4 steps an epoch. Epoch 1 is the warm-up: its last step
    // runs at 0.1 * 3/4. From epoch 2 the rule watches `loss` with min_delta 10, which no epoch
    // beats after the first it sees: epoch 2 sets the best; 3 waits (patience 1) → 0.05 from
    // epoch 4, cooldown 2; 4 counts the cooldown to 1; 5 to 0, waits → 0.025; 7 → 0.0125;
    // 9 → max(0.00625, min_lr 0.01) = 0.01; from then the rate is at min_lr and stays.
    let expected = [
        0.075, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.01, 0.01, 0.01,
    ];
    assert_eq!(rates.len(), expected.len());
    for (got, want) in rates.iter().zip(expected) {
        // The rate of a step is an f32; the JSON line prints it as an f64.
        let want = f64::from(want as f32);
        assert!((got - want).abs() <= 1e-15, "{rates:?}");
    }
}

#[test]
fn a_run_resumed_in_a_cooldown_continues_bit_for_bit() {
    let whole = tempfile::tempdir().unwrap();
    let whole_epochs = train(whole.path(), &["--epochs", "6"]);
    let parts = tempfile::tempdir().unwrap();
    train(parts.path(), &["--epochs", "3"]);
    // Epoch 3 cut the rate and started a cooldown: the checkpoint must carry both.
    let resumed = train(parts.path(), &["--epochs", "6", "--resume"]);
    let read = |p: &Path| std::fs::read(p.join("weights.safetensors")).unwrap();
    assert_eq!(read(whole.path()), read(parts.path()));
    let tail = &whole_epochs[3..];
    assert_eq!(resumed.len(), tail.len());
    for (a, b) in resumed.iter().zip(tail) {
        assert_eq!(a["lr"], b["lr"]);
        assert_eq!(a["loss"], b["loss"]);
    }
}
