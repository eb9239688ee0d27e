//! No problem `check` could know may first appear at `train`: every ui case's spec (and every
//! spec under `tests/fixtures`) runs through `modelc check` and, when it has a train block,
//! through one epoch of `modelc train`. A spec that `check` passes must not fail training with a
//! problem of the spec: `train` may fail only on its data files (E06xx), on divergence (E0807)
//! or on I/O and usage (exit 2), which a static check cannot see. Regression cases of issue 16 (labels that do not
//! fit an inferred output, an unlabeled pipeline, a `val_*` monitor without a split) are ui cases
//! that `check` now rejects.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn specs(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            specs(&p, out);
        } else if p.extension().is_some_and(|e| e == "model") {
            out.push(p);
        }
    }
}

fn modelc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args(["--color", "never"])
        .args(args)
        .output()
        .unwrap()
}

/// The codes of the JSON diagnostics the command printed.
fn codes(o: &Output) -> Vec<String> {
    let text = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["code"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn train_finds_no_spec_problem_that_check_passed() {
    let mut all = Vec::new();
    specs(Path::new("tests/ui"), &mut all);
    specs(Path::new("tests/fixtures"), &mut all);
    let tmp = tempfile::tempdir().unwrap();
    let mut trained = 0;
    let mut failures = Vec::new();
    for (i, spec) in all.iter().enumerate() {
        let text = std::fs::read_to_string(spec).unwrap_or_default();
        if !text.lines().any(|l| l.trim_start().starts_with("train ")) {
            continue;
        }
        let path = spec.to_str().unwrap();
        let check = modelc(&["check", "--format", "json", path]);
        if check.status.code() != Some(0) {
            continue;
        }
        let out = tmp.path().join(format!("run{i}"));
        let train = modelc(&[
            "train",
            path,
            "--epochs",
            "1",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ]);
        let found = codes(&train);
        // Data files (E06xx) and divergence (E0807) are found only by running.
        let spec_problem = train.status.code() == Some(1)
            && found.iter().all(|c| !c.starts_with("E06") && c != "E0807");
        if spec_problem {
            failures.push(format!(
                "{path}: check passed, train failed with {found:?}\n{}",
                String::from_utf8_lossy(&train.stderr)
            ));
        } else if train.status.code() == Some(0) {
            trained += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The corpus must exercise training, or this test could not fail.
    assert!(trained >= 2, "only {trained} specs trained");
}
