//! Guards issue 22, "metric accumulators in checkpoints": an epoch interrupted (SIGINT) after
//! its batches and resumed logs the same `metrics.csv` row as an uninterrupted run, for the
//! mean metrics (accuracy, mae), the confusion ones (f1, precision) and AUC's kept scores, on a
//! binary and a multi-class output. Full-batch data makes every interrupt land inside an epoch:
//! the flag is read after a batch, and an epoch has one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const SPEC: &str = "tests/fixtures/train/resume_metrics.model";

fn modelc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

/// `metrics.csv` without its last column (samples per second: a measured time, never equal).
fn metrics_without_throughput(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    text.lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect()
}

/// Trains `block`, interrupts it after its first epoch, resumes it to the end of the epoch the
/// interrupt cut, and returns that run's metrics and the epoch count.
fn interrupted_and_resumed(block: &str, out: &Path) -> (String, usize) {
    let out_s = out.to_str().unwrap();
    let args = [
        "train",
        SPEC,
        "--train",
        block,
        "--out",
        out_s,
        "--threads",
        "2",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .args(["--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("\"epoch\":1"), "{first}");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The epochs logged, then the one in progress at the interrupt.
    let epochs = 1 + rest.lines().count() + 1;
    let epochs_s = epochs.to_string();
    let o = modelc(&[&args[..], &["--resume", "--epochs", &epochs_s]].concat());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (metrics_without_throughput(out), epochs)
}

#[test]
fn an_interrupted_epoch_resumes_its_metrics_row_exactly() {
    for block in ["BinaryRun", "MultiRun"] {
        let cut = tempfile::tempdir().unwrap();
        let whole = tempfile::tempdir().unwrap();
        let (resumed, epochs) = interrupted_and_resumed(block, cut.path());
        let epochs = epochs.to_string();
        let o = modelc(&[
            "train",
            SPEC,
            "--train",
            block,
            "--out",
            whole.path().to_str().unwrap(),
            "--threads",
            "2",
            "--epochs",
            &epochs,
        ]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let expected = metrics_without_throughput(whole.path());
        let header = expected.lines().next().unwrap();
        for name in ["accuracy", "auc"] {
            assert!(header.split(',').any(|c| c == name), "{block}: {header}");
        }
        assert_eq!(
            resumed, expected,
            "{block}: the resumed run's metrics.csv differs"
        );
    }
}
