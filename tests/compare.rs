//! `modelc compare` end to end: real run folders trained by `modelc train` ranked against their
//! own `metrics.csv`, the files `-o DIR` writes, JSON lines, refusals with their exit status, and
//! the report rendered by a real headless browser (`MODELC_BROWSER`, else `chromium`,
//! `chromium-browser`, `google-chrome` on PATH; skipped with the reason when there is none).

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn modelc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(root())
        .args(["--color", "never"])
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(o));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The tiny digits spec with another optimizer, its data path made absolute.
fn tiny_spec(dir: &Path, name: &str, optimizer: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("tests/fixtures/train/tiny_digits.model"))
        .unwrap()
        .replace(
            "\"../../../data/digits.csv\"",
            &format!("\"{}\"", root().join("data/digits.csv").display()),
        )
        .replace("adam(lr: 2e-2)", optimizer);
    let path = dir.join(format!("{name}.model"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Trains one epoch of the tiny spec with `optimizer` into `dir/name`.
fn train(dir: &Path, name: &str, optimizer: &str) -> PathBuf {
    let spec = tiny_spec(dir, name, optimizer);
    let out = dir.join(name);
    ok(&modelc(&[
        "train",
        spec.to_str().unwrap(),
        "--train",
        "Tiny",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]));
    out
}

/// A column of a CSV text (header row first), by name.
fn column(csv: &str, name: &str) -> Vec<String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let k = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("{name} in {header:?}"));
    lines
        .map(|l| l.split(',').nth(k).unwrap().to_string())
        .collect()
}

#[test]
fn real_runs_are_ranked_by_their_own_metrics_and_the_files_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let adam = train(tmp.path(), "adam", "adam(lr: 2e-2)");
    let sgd = train(tmp.path(), "sgd", "sgd(lr: 0.01)");
    // The reference: each run's val_loss and val_accuracy as its own metrics.csv has them.
    let metric = |dir: &Path, name: &str| -> f64 {
        let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        column(&csv, name)[0].parse().unwrap()
    };
    let (adam_loss, sgd_loss) = (metric(&adam, "val_loss"), metric(&sgd, "val_loss"));
    assert_ne!(adam_loss, sgd_loss, "the two optimizers should not tie");
    let by_loss = if adam_loss < sgd_loss {
        ["adam", "sgd"]
    } else {
        ["sgd", "adam"]
    };
    let out = tmp.path().join("cmp");
    let table = ok(&modelc(&[
        "compare",
        sgd.to_str().unwrap(),
        adam.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]));
    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(column(&results, "trial"), by_loss);
    assert_eq!(column(&results, "rank"), ["1", "2"]);
    assert_eq!(column(&results, "epochs"), ["1", "1"]);
    assert_eq!(
        column(&results, "best_val_loss")[0].parse::<f64>().unwrap(),
        adam_loss.min(sgd_loss)
    );
    let table_lines: Vec<&str> = table.lines().collect();
    assert!(
        table_lines[1].starts_with(&format!("*     1  {}", by_loss[0])),
        "{table}"
    );
    assert_eq!(
        table_lines[3],
        format!(
            "winner: {} (best val_loss {:.6})",
            by_loss[0],
            adam_loss.min(sgd_loss)
        )
    );
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(column(&summary, "configuration"), by_loss);
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("<table id=\"results\">") && page.contains("<svg"));

    // By the highest val_accuracy instead, again checked against the runs' own files.
    let (adam_acc, sgd_acc) = (metric(&adam, "val_accuracy"), metric(&sgd, "val_accuracy"));
    let json = ok(&modelc(&[
        "compare",
        adam.to_str().unwrap(),
        sgd.to_str().unwrap(),
        "--select",
        "max",
        "val_accuracy",
        "--format",
        "json",
    ]));
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let first = if adam_acc >= sgd_acc { "adam" } else { "sgd" };
    assert_eq!(lines[0]["trial"], first);
    assert_eq!(lines[0]["best"]["val_accuracy"], adam_acc.max(sgd_acc));
    assert_eq!(lines[2]["select"]["goal"], "max");
}

#[test]
fn broken_runs_are_refused_with_the_folder_and_the_right_status() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    std::fs::create_dir(&good).unwrap();
    std::fs::write(good.join("metrics.csv"), "epoch,loss\n1,0.5\n").unwrap();
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("metrics.csv"), "epoch,loss\n1,oops\n").unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();

    let o = modelc(&["compare", &path(&good), &path(&bad), &path(&empty)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("error[E1102]") && err.contains(&path(&bad.join("metrics.csv"))),
        "{err}"
    );
    assert!(
        err.contains("error[E1101]") && err.contains(&path(&empty)),
        "{err}"
    );

    let o = modelc(&["compare", &path(&good), &path(&tmp.path().join("nowhere"))]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("error[E0900]"));

    // Nothing is written when a run is refused.
    let out = tmp.path().join("out");
    let o = modelc(&["compare", &path(&bad), "-o", &path(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!out.exists());
}

/// The browser to render with: `MODELC_BROWSER`, else the first Chromium found on PATH.
fn browser() -> Result<PathBuf, String> {
    if let Some(b) = std::env::var_os("MODELC_BROWSER") {
        return Ok(PathBuf::from(b));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err("no browser: set MODELC_BROWSER or install chromium (apt-get install chromium)".into())
}

#[test]
fn the_report_renders_in_a_headless_browser() {
    let browser = match browser() {
        Ok(b) => b,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for (name, losses) in [("a<b>", [0.9, 0.5, 0.4]), ("c&d", [1.2, 0.8, 0.7])] {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let mut csv = String::from("epoch,loss,accuracy,lr,samples_per_sec\n");
        for (e, l) in losses.iter().enumerate() {
            let _ = writeln!(csv, "{},{l},{},0.1,100", e + 1, 1.0 - l);
        }
        std::fs::write(dir.join("metrics.csv"), csv).unwrap();
        runs.push(dir.to_str().unwrap().to_string());
    }
    let out = tmp.path().join("out");
    let mut args = vec!["compare".to_string()];
    args.extend(runs);
    args.extend(["-o".into(), out.to_str().unwrap().into()]);
    ok(&modelc(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let profile = tmp.path().join("profile");
    let rendered = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("file://{}", out.join("report.html").display()),
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let dom = String::from_utf8_lossy(&rendered.stdout);
    eprintln!("rendered with {}", browser.display());
    assert!(
        dom.contains("<table id=\"results\">"),
        "no results table in the DOM; stderr:\n{}\nDOM:\n{dom}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    // The browser parsed the page into the DOM we wrote: two trial rows, a chart per metric
    // (loss, accuracy), the hostile names as text.
    let results = &dom[dom.find("<table id=\"results\">").unwrap()..];
    let results = &results[..results.find("</table>").unwrap()];
    assert_eq!(results.matches("<tr").count(), 3, "{results}");
    assert_eq!(dom.matches("<svg").count(), 2);
    assert!(dom.contains("<polyline"));
    assert!(dom.contains("a&lt;b&gt;") && dom.contains("c&amp;d"));
}
