//! Looking at training: `curves.svg` of a real run (axes, ticks, the legend beside the plot,
//! the best epoch found here from `metrics.csv`), the final lines (best epoch, every file
//! written), `--format json`'s summary, and `train --help` describing what json prints.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn modelc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

/// The text of every `<text>` element with its x.
fn texts(svg: &str) -> Vec<(f64, String)> {
    svg.split("<text ")
        .skip(1)
        .map(|t| {
            let start = t.find("x=\"").unwrap() + 3;
            let x = t[start..start + t[start..].find('"').unwrap()]
                .parse()
                .unwrap();
            let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
            (x, body.trim().to_string())
        })
        .collect()
}

#[test]
fn a_runs_curves_final_lines_and_json_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = modelc(&[
        "train",
        "tests/fixtures/train/tiny_digits.model",
        "--train",
        "Tiny",
        "--epochs",
        "3",
        "--out",
        run.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    // the best epoch by hand: the least val_loss in metrics.csv
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "val_loss").unwrap();
    let (best, best_loss) = csv
        .lines()
        .skip(1)
        .map(|l| {
            let row: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
            (row[0] as u64, row[col])
        })
        .fold((0, f64::INFINITY), |b, r| if r.1 < b.1 { r } else { b });
    assert!(
        stderr.contains(&format!("Best epoch {best} (val_loss {best_loss:.4})")),
        "{stderr}"
    );
    for file in [
        "weights.safetensors",
        "plan.ron",
        "metrics.csv",
        "curves.svg",
        "checkpoint.safetensors",
    ] {
        let line = format!("Wrote {}", run.join(file).display());
        assert!(stderr.contains(&line), "no `{line}` in\n{stderr}");
    }

    let svg = std::fs::read_to_string(run.join("curves.svg")).unwrap();
    let texts = texts(&svg);
    let count = |s: &str| texts.iter().filter(|t| t.1 == s).count();
    assert_eq!(count("Tiny"), 1, "the title");
    assert_eq!(count("epoch"), 2, "the x axis title of both panels");
    assert_eq!(count("metric"), 1, "the metric panel's y title");
    for tick in ["0", "1", "2", "3"] {
        assert!(count(tick) >= 2, "epoch tick {tick}");
    }
    let label = texts
        .iter()
        .find(|t| t.1.starts_with("best epoch "))
        .unwrap();
    assert!(
        label
            .1
            .starts_with(&format!("best epoch {best} (val_loss ")),
        "{}",
        label.1
    );
    let frame = svg
        .split("<rect ")
        .skip(1)
        .map(|r| format!(" {}", &r[..r.find('>').unwrap()]))
        .find(|r| r.contains("fill=\"none\""))
        .unwrap();
    let num = |name: &str| -> f64 {
        let start = frame.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        frame[start..start + frame[start..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    let (left, right) = (num("x") - 1.0, num("x") + num("width"));
    for entry in [
        "loss per step (smoothed)",
        "loss",
        "val_loss",
        "accuracy",
        "val_accuracy",
    ] {
        let at: Vec<f64> = texts.iter().filter(|t| t.1 == entry).map(|t| t.0).collect();
        assert!(
            at.iter().any(|&x| x > right),
            "legend entry {entry} not right of the plot ({left}..{right}): {at:?}"
        );
    }

    // --format json: the summary names every file written
    let run2 = tmp.path().join("run2");
    let out = modelc(&[
        "train",
        "tests/fixtures/train/tiny_digits.model",
        "--train",
        "Tiny",
        "--epochs",
        "1",
        "--format",
        "json",
        "--out",
        run2.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let written: Vec<String> = last["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(
        written.contains(&run2.join("curves.svg").display().to_string()),
        "{written:?}"
    );
    assert_eq!(
        stdout.lines().count(),
        2,
        "one epoch object and the summary:\n{stdout}"
    );
}

#[test]
fn train_help_describes_the_json_epochs() {
    let out = modelc(&["train", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("one JSON object per epoch"), "{help}");
    assert!(help.contains("--logdir <DIR>"), "{help}");
}
