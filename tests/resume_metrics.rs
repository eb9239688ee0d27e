//! Guards issue 22, "metric accumulators in checkpoints": an epoch interrupted (SIGINT) after
//! its batches and resumed logs the same `metrics.csv` row as an uninterrupted run, for the
//! mean metrics (accuracy, mae), the confusion ones (f1, precision) and AUC's kept scores, on a
//! binary and a multi-class output, and for each output of a model with two (issue 16). Full-batch
//! data makes every interrupt land inside an epoch: the flag is read after a batch, and an epoch
//! has one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::modelc;

const SPEC: &str = "tests/fixtures/train/resume_metrics.model";
const TWO_OUTPUTS: &str = "tests/fixtures/train/two_outputs.model";

/// `metrics.csv` without its last column (samples per second: a measured time, never equal).
fn metrics_without_throughput(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    text.lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect()
}

/// Trains `block` of `spec`, interrupts it after its first epoch, resumes it to the end of the
/// epoch the interrupt cut, and returns that run's metrics and the epoch count.
fn interrupted_and_resumed(spec: &str, block: &str, out: &Path) -> (String, usize) {
    let out_s = out.to_str().unwrap();
    let args = [
        "train",
        spec,
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

/// The interrupted-and-resumed run of `block` against an uninterrupted one of as many epochs;
/// returns the uninterrupted run's header.
fn resumed_equals_uninterrupted(spec: &str, block: &str) -> String {
    let cut = tempfile::tempdir().unwrap();
    let whole = tempfile::tempdir().unwrap();
    let (resumed, epochs) = interrupted_and_resumed(spec, block, cut.path());
    let epochs = epochs.to_string();
    let o = modelc(&[
        "train",
        spec,
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
    assert_eq!(
        resumed, expected,
        "{block}: the resumed run's metrics.csv differs"
    );
    expected.lines().next().unwrap().to_string()
}

#[test]
fn an_interrupted_epoch_resumes_its_metrics_row_exactly() {
    for block in ["BinaryRun", "MultiRun"] {
        let header = resumed_equals_uninterrupted(SPEC, block);
        for name in ["accuracy", "auc"] {
            assert!(header.split(',').any(|c| c == name), "{block}: {header}");
        }
    }
}

#[test]
fn an_interrupted_epoch_of_a_two_output_model_resumes_every_outputs_metrics_exactly() {
    let header = resumed_equals_uninterrupted(TWO_OUTPUTS, "WholeBatch");
    for name in [
        "loss",
        "digit_loss",
        "parity_loss",
        "digit_accuracy",
        "digit_f1",
        "parity_auc",
        "val_digit_loss",
        "val_parity_accuracy",
    ] {
        assert!(header.split(',').any(|c| c == name), "{header}");
    }
}
