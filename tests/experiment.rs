//! `modelc experiment` and `modelc train --set` end to end: the numbers do not depend on
//! `--jobs`, an interrupted trial resumes from its checkpoint while finished ones are kept, and
//! an override gives the numbers of the spec written with that setting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn modelc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A folder holding `a.model` with `spec` in it.
fn folder(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.model"), spec).unwrap();
    dir
}

/// `metrics.csv` without its `samples_per_sec` column (a timing, not a result).
fn numbers(path: &Path) -> String {
    let csv = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    csv.lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A small digits classifier: 4 trials of 2 epochs.
fn digits_spec() -> String {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.csv");
    format!(
        "model Tiny(image: f32[N, 8, 8, 1]) -> f32[N, 10] {{
    conv2d(4, kernel: 3, activation: relu)
    flatten()
    dense(10, activation: softmax)
}}
data Digits {{
    source  csv(\"{}\", label: \"target\", features: 64, classes: 10)
    map     reshape(8, 8, 1) |> scale(1/16)
    augment crop(8, padding: 1)
    split   validation: 0.2, seed: 7
    shuffle seed: 42
    batch   64
}}
train Tiny on Digits {{
    loss      sparse_categorical_crossentropy
    optimizer adam(lr: 1e-2)
    epochs    2
    metrics   [accuracy]
    seed      1
}}
experiment Opt {{
    base   Tiny
    vary   optimizer: [sgd(lr: 0.1, momentum: 0.9), adam(lr: 1e-2)]
    repeat 2
    select max val_accuracy
}}
",
        data.display()
    )
}

const TRIALS: [&str; 4] = [
    "optimizer=sgd,seed=1",
    "optimizer=sgd,seed=2",
    "optimizer=adam,seed=1",
    "optimizer=adam,seed=2",
];

#[test]
fn the_jobs_do_not_change_the_numbers() {
    let dir = folder(&digits_spec());
    for (jobs, out) in [("1", "one"), ("2", "two")] {
        let o = modelc(
            dir.path(),
            &["experiment", "a.model", "--jobs", jobs, "--out", out],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let mut seen = Vec::new();
    for trial in TRIALS {
        let one = numbers(
            &dir.path()
                .join("one/trials")
                .join(trial)
                .join("metrics.csv"),
        );
        let two = numbers(
            &dir.path()
                .join("two/trials")
                .join(trial)
                .join("metrics.csv"),
        );
        assert_eq!(one, two, "{trial}");
        assert_eq!(one.lines().count(), 3, "a header and 2 epochs:\n{one}");
        seen.push(one);
    }
    // The trials differ: each has its optimizer and seed.
    for (i, a) in seen.iter().enumerate() {
        for b in &seen[i + 1..] {
            assert_ne!(a, b);
        }
    }
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.path()
                .join("one/trials/optimizer=adam,seed=2/trial.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(info["name"], "optimizer=adam,seed=2");
    assert_eq!(info["configuration"], "optimizer=adam");
    assert_eq!(info["seed"], 2);
    assert_eq!(info["settings"][0][0], "optimizer");
    assert_eq!(info["settings"][0][1], "adam(lr: 0.01)");
}

#[test]
fn a_trial_trains_as_train_does_with_its_settings_written_in() {
    // The trial `optimizer=sgd,seed=2` is the train block with that optimizer and seed: the
    // same numbers as `modelc train --threads 1` of the spec written so.
    let dir = folder(&digits_spec());
    let o = modelc(
        dir.path(),
        &["experiment", "a.model", "--jobs", "2", "--out", "x"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let written = digits_spec()
        .replace(
            "optimizer adam(lr: 1e-2)",
            "optimizer sgd(lr: 0.1, momentum: 0.9)",
        )
        .replace("seed      1", "seed      2");
    std::fs::write(dir.path().join("b.model"), written).unwrap();
    let o = modelc(
        dir.path(),
        &["train", "b.model", "--threads", "1", "--out", "b"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        numbers(&dir.path().join("x/trials/optimizer=sgd,seed=2/metrics.csv")),
        numbers(&dir.path().join("b/metrics.csv"))
    );
    // And `--set` gives the same run from the unchanged spec.
    let o = modelc(
        dir.path(),
        &[
            "train",
            "a.model",
            "--threads",
            "1",
            "--out",
            "c",
            "--set",
            "optimizer=sgd(lr: 0.1, momentum: 0.9)",
            "--set",
            "seed=2",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        numbers(&dir.path().join("c/metrics.csv")),
        numbers(&dir.path().join("b/metrics.csv"))
    );
}

#[test]
fn set_changes_data_settings_and_refuses_unknown_ones() {
    let dir = folder(&digits_spec());
    let o = modelc(
        dir.path(),
        &[
            "train",
            "a.model",
            "--out",
            "r",
            "--set",
            "epochs=1",
            "--set",
            "data.batch=all",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let csv = numbers(&dir.path().join("r/metrics.csv"));
    assert_eq!(csv.lines().count(), 2, "one epoch:\n{csv}");
    let o = modelc(
        dir.path(),
        &["train", "a.model", "--out", "s", "--set", "data.batch=alll"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--set:1:12"), "{err}");
}

/// A linear regression whose epochs take a millisecond: the second trial runs long enough to
/// be interrupted.
const REGRESSION: &str = "model Line(x: f32[N, 4]) -> f32[N, 1] {
    dense(1)
}
data Points {
    source regression(n: 256, features: 4, noise: 0.1, seed: 3)
    split  validation: 0.25, seed: 1
    batch  64
}
train Line on Points {
    loss       mse
    optimizer  sgd(lr: 0.01)
    epochs     2
    checkpoint every: 1
}
experiment Long {
    base Line
    vary epochs: [2, 400]
}
";

#[test]
fn an_interrupted_trial_resumes_from_its_checkpoint_and_finished_ones_are_kept() {
    let dir = folder(REGRESSION);
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(dir.path())
        .args([
            "experiment",
            "a.model",
            "--jobs",
            "1",
            "--format",
            "json",
            "--out",
            "x",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let record: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(record["trial"], "epochs=2", "{first}");
    // The long trial has written its first checkpoint: interrupt it.
    let long: PathBuf = dir.path().join("x/trials/epochs=400");
    while !long.join("checkpoint.safetensors").is_file() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let killed = Command::new("kill")
        .args(["-INT".to_string(), child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(!long.join("trial.json").exists());
    let kept = dir.path().join("x/trials/epochs=2/trial.json");
    let before = std::fs::read_to_string(&kept).unwrap();
    let done = numbers(&long.join("metrics.csv")).lines().count() - 1;
    assert!(done < 400, "{done} epochs before the interrupt");

    let o = modelc(
        dir.path(),
        &["experiment", "a.model", "--jobs", "1", "--out", "x"],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "an earlier run is not replaced: {}",
        text(&o)
    );
    let o = modelc(
        dir.path(),
        &[
            "experiment",
            "a.model",
            "--jobs",
            "1",
            "--out",
            "x",
            "--resume",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("epochs=2: finished earlier, kept"), "{err}");
    assert!(
        err.contains("epochs=400: resumed from its checkpoint"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), before);
    let csv = numbers(&long.join("metrics.csv"));
    let epochs: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let expected: Vec<String> = (1..=400).map(|e| e.to_string()).collect();
    assert_eq!(epochs, expected, "every epoch once");
    assert!(long.join("trial.json").is_file());
}
