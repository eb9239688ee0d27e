//! `modelc check` on what is not a plain file list: a spec on standard input (`-`, named by
//! `--stdin-filename`), a folder (every `.model` below it, sorted, one summary line), and
//! `--watch` (re-check on change, Ctrl-C exits 130).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CLEAN: &str = "model M(x: f32[N, 4]) {\n    dense(2)\n}\n";
/// A 4x4 pool over a 3x3 map: E0402 at line 2.
const POOL_TOO_BIG: &str = "model M(x: f32[N, 3, 3, 1]) {\n    max_pool2d(4)\n}\n";

fn modelc_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn stdin_is_checked_under_the_given_name() {
    let o = modelc_with_stdin(
        &[
            "--color",
            "never",
            "check",
            "-",
            "--stdin-filename",
            "nets/pool.model",
        ],
        POOL_TOO_BIG,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("error[E0402]"), "{err}");
    assert!(err.contains("nets/pool.model:2:5"), "{err}");
    assert!(err.contains("Failed 1 file: 1 error"), "{err}");

    let o = modelc_with_stdin(&["check", "-"], CLEAN);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // JSON names the file as given too.
    let o = modelc_with_stdin(
        &[
            "check",
            "-",
            "--stdin-filename",
            "x.model",
            "--format",
            "json",
        ],
        POOL_TOO_BIG,
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["code"], "E0402");
    assert!(line.to_string().contains("x.model"), "{line}");
}

#[test]
fn a_folder_checks_every_spec_below_it_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("b/deeper")).unwrap();
    std::fs::write(dir.path().join("a.model"), CLEAN).unwrap();
    std::fs::write(dir.path().join("b/deeper/z.model"), POOL_TOO_BIG).unwrap();
    std::fs::write(dir.path().join("b/c.model"), POOL_TOO_BIG).unwrap();
    std::fs::write(dir.path().join("b/notes.txt"), "not a spec").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args(["--color", "never", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("Failed 3 files: 2 errors"), "{err}");
    assert_eq!(err.matches("Failed").count(), 1, "one summary line: {err}");
    // Sorted by path: b/c.model before b/deeper/z.model.
    let c = err.find("c.model:2:5").expect("c.model reported");
    let z = err.find("z.model:2:5").expect("z.model reported");
    assert!(c < z, "{err}");

    // A folder of clean specs: exit 0.
    std::fs::write(dir.path().join("b/c.model"), CLEAN).unwrap();
    std::fs::write(dir.path().join("b/deeper/z.model"), CLEAN).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("Checked 3 files: no errors"));

    // A folder without specs is a usage problem.
    let empty = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args(["--color", "never", "check"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("E0902"), "{}", stderr(&o));
}

/// Waits for a stderr line containing `want` (bounded: a hung watcher fails, not hangs).
fn wait_for(lines: &mpsc::Receiver<String>, want: &str, seen: &mut Vec<String>) {
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => {
                let hit = l.contains(want);
                seen.push(l);
                if hit {
                    return;
                }
            }
            Err(e) => panic!("no line with {want:?} ({e}); saw:\n{}", seen.join("\n")),
        }
    }
}

#[test]
fn watch_rechecks_on_change_and_ctrl_c_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("net.model");
    std::fs::write(&spec, CLEAN).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args(["--color", "never", "check", "--watch"])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    wait_for(&rx, "Checked 1 file: no errors; watching", &mut seen);
    // A clean round is one line.
    assert_eq!(seen.len(), 1, "{seen:?}");
    std::fs::write(&spec, POOL_TOO_BIG).unwrap();
    wait_for(&rx, "Failed 1 file: 1 error", &mut seen);
    assert!(seen.iter().any(|l| l.contains("error[E0402]")), "{seen:?}");
    // A new spec in the folder is picked up.
    std::fs::write(dir.path().join("second.model"), CLEAN).unwrap();
    wait_for(&rx, "Failed 2 files: 1 error", &mut seen);
    std::fs::write(&spec, CLEAN).unwrap();
    wait_for(&rx, "Checked 2 files: no errors", &mut seen);
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(Path::new(&spec).exists());
}

/// Guards issue 22, "a cap per code": a flood of one diagnostic (the long-errors fuzz seed)
/// shows people the first 50 of its code and one note counting the rest; JSON keeps every one,
/// and the exit code and the summary count every one.
#[test]
fn a_flood_of_one_code_is_capped_for_people_and_complete_for_machines() {
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/check/seed-long-errors");
    let seed = seed.to_str().unwrap();
    let run = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_modelc"))
            .args(["check", seed, "--format", format])
            .output()
            .unwrap()
    };
    let json = run("json");
    assert_eq!(json.status.code(), Some(1));
    let all: Vec<serde_json::Value> = String::from_utf8(json.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let e0201 = all.iter().filter(|d| d["code"] == "E0201").count();
    assert!(e0201 > 1000, "{e0201} E0201 in JSON");
    let human = run("human");
    assert_eq!(human.status.code(), Some(1));
    let text = stderr(&human);
    assert_eq!(text.matches("error[E0201]").count(), 50, "{text}");
    let note = format!(
        "note: {} more E0201 diagnostics in {seed} not shown",
        e0201 - 50
    );
    assert_eq!(text.matches(&note).count(), 1, "{note}\n{text}");
    assert!(text.contains(&format!("{} errors", all.len())), "{text}");
    let github = run("github");
    let gh = String::from_utf8(github.stdout).unwrap();
    assert_eq!(gh.matches("[E0201]").count(), 50);
    assert_eq!(gh.matches("::notice ").count(), 1, "{gh}");
}
