//! The `modelc` binary end to end: exit codes, output formats, limits and manners.

// Test code: a failed unwrap is a failed test; parsed numbers are compared exactly on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp
)]

mod common;

use common::modelc;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn temp_spec(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".model")
        .tempfile()
        .unwrap();
    f.write_all(bytes).unwrap();
    f
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn shipped_specs_check_clean() {
    let mut args = vec!["check"];
    let specs: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs"))
        .unwrap()
        .map(|e| format!("specs/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert!(specs.len() >= 3);
    args.extend(specs.iter().map(String::as_str));
    let o = modelc(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn syntax_error_exits_1_with_code_and_position() {
    let f = temp_spec(b"model M(x: f32[N, 4]) {\n    dense(3 4)\n}\n");
    let o = modelc(&["check", f.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("error[E0100]: expected `,`, `)` or `|>`, found `4`"),
        "{e}"
    );
    assert!(e.contains(&format!("{}:2:13", f.path().display())), "{e}");
}

#[test]
fn json_format_gives_one_object_per_line_with_every_field() {
    let f = temp_spec(b"model M(x: f32[N, 4]) {\n    dense(3 4)\n    = x\n}\n");
    let o = modelc(&["check", "--format", "json", f.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 2);
    for key in [
        "code",
        "severity",
        "message",
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "labels",
        "notes",
        "help",
    ] {
        assert!(lines[0].get(key).is_some(), "missing {key} in {}", lines[0]);
    }
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines[0]["column"], 13);
    assert_eq!(lines[1]["line"], 3);
    assert_eq!(lines[1]["help"], "bind a name with `let name = ...`");
}

#[test]
fn github_format_annotates_file_line_and_column() {
    let f = temp_spec(b"model M(x: f32[N, 4]) {\n    dense(3 4)\n}\n");
    let o = modelc(&["check", "--format", "github", f.path().to_str().unwrap()]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.starts_with(&format!(
            "::error file={},line=2,col=13,",
            f.path().display()
        )),
        "{out}"
    );
}

#[test]
fn missing_file_is_io_error() {
    let o = modelc(&["check", "no/such/file.model"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("error[E0900]: cannot read no/such/file.model"),
        "{}",
        stderr(&o)
    );
    // Still JSON in JSON mode.
    let o = modelc(&["check", "--format", "json", "no/such/file.model"]);
    assert_eq!(o.status.code(), Some(2));
    let lines = json_lines(&o);
    assert_eq!(lines[0]["code"], "E0900");
    assert_eq!(lines[0]["file"], "no/such/file.model");
}

#[test]
fn a_folder_is_checked_whole_and_an_io_error_where_one_file_is_wanted() {
    let o = modelc(&["check", "specs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let n = std::fs::read_dir("specs").unwrap().count();
    assert!(
        stderr(&o).contains(&format!("Checked {n} files: no errors")),
        "{}",
        stderr(&o)
    );
    let o = modelc(&["summary", "specs"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("it is a folder"), "{}", stderr(&o));
}

#[test]
fn bad_flag_with_json_format() {
    let o = modelc(&["check", "--format", "json", "--frobnicate", "x.model"]);
    assert_eq!(o.status.code(), Some(2));
    let lines = json_lines(&o);
    assert_eq!(lines[0]["code"], "E0902");
    // Without JSON, clap's own message.
    let o = modelc(&["check", "--frobnicate", "x.model"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--frobnicate"), "{}", stderr(&o));
}

#[test]
fn hundred_thousand_nested_brackets_are_an_error_not_a_crash() {
    let mut src = b"train M on D {\n    metrics ".to_vec();
    src.extend(std::iter::repeat_n(b'[', 100_000));
    src.extend(std::iter::repeat_n(b']', 100_000));
    src.extend(b"\n}\n");
    let f = temp_spec(&src);
    let o = modelc(&["check", f.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("error[E0104]"), "{}", stderr(&o));
    // Pipes are flat: a 100,000-stage pipe parses without recursion.
    let mut src = b"model M(x: f32[N, 4]) {\n    x".to_vec();
    for _ in 0..100_000 {
        src.extend(b" |> relu()");
    }
    src.extend(b"\n}\n");
    let f = temp_spec(&src);
    let o = modelc(&["check", f.path().to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(101), "{}", stderr(&o));
}

#[test]
fn source_size_limit() {
    let f = temp_spec(b"model M(x: f32[N, 4]) {\n    dense(3)\n}\n");
    let o = modelc(&[
        "check",
        "--max-source-bytes",
        "10",
        f.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("error[E0105]"), "{}", stderr(&o));
}

#[test]
fn invalid_utf8() {
    let f = temp_spec(b"model M(x: f32[N, 4]) {\n    dense(3) \xff\n}\n");
    let o = modelc(&["check", "--format", "json", f.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let lines = json_lines(&o);
    assert_eq!(lines[0]["code"], "E0106");
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines[0]["column"], 14);
}

#[test]
fn nul_byte() {
    let f = temp_spec(b"model M(x: f32[N, 4]) {\n    dense(3)\0\n}\n");
    let o = modelc(&["check", "--format", "json", f.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_lines(&o)[0]["code"], "E0107");
}

#[test]
fn bidi_control() {
    let f = temp_spec("model M(x: f32[N, 4]) {\n    dense(3) // \u{202E}gnirts\n}\n".as_bytes());
    let o = modelc(&["check", "--format", "json", f.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_lines(&o)[0]["code"], "E0108");
}

#[test]
fn explain_prints_every_code_and_rejects_unknown_ones() {
    for info in modelc::diag::all_codes() {
        let code = info.code.as_str();
        let o = modelc(&["explain", code]);
        assert_eq!(o.status.code(), Some(0), "{code}");
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(out.starts_with(&format!("{code}: {}", info.title)), "{out}");
        assert!(out.contains("```"), "{code} has no example");
    }
    let o = modelc(&["explain", "e0104"]);
    assert_eq!(o.status.code(), Some(0));
    let o = modelc(&["explain", "E9999"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn explain_shows_a_layer_its_keras_name_and_the_list_of_layers() {
    let o = modelc(&["explain", "dense"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.starts_with("dense(units, activation: linear, use_bias: true)\n"),
        "{out}"
    );
    assert!(
        out.contains("use_bias    true or false; default true"),
        "{out}"
    );

    let o = modelc(&["explain", "BatchNormalization"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("the layer here is `batch_norm`"), "{out}");
    assert!(
        out.contains("batch_norm(momentum: 0.99, epsilon: 0.001)"),
        "{out}"
    );

    let o = modelc(&["explain", "layers"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    let listed: Vec<&str> = out.lines().collect();
    assert_eq!(listed.len(), modelc::ops::layer::names().count(), "{out}");
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with("lstm(units, return_sequences: false")),
        "{out}"
    );

    let o = modelc(&["explain", "dnse"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("did you mean `dense`?"), "{err}");
}

#[test]
fn no_colour_when_not_a_terminal_or_no_color() {
    let f = temp_spec(b"model M(x: f32[N, 4]) {\n    dense(3 4)\n}\n");
    let o = modelc(&["check", f.path().to_str().unwrap()]);
    assert!(!o.stderr.contains(&0x1b), "colour codes in piped output");
    let o = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args(["--color", "auto", "check", f.path().to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!o.stderr.contains(&0x1b));
    let o = modelc(&["--color", "always", "check", f.path().to_str().unwrap()]);
    assert!(o.stderr.contains(&0x1b), "--color always must colour");
}

#[test]
fn closed_stdout_is_not_a_panic() {
    let bin = env!("CARGO_BIN_EXE_modelc");
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{bin}' explain | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}"
        ))
        .output()
        .unwrap();
    let status = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(status.trim(), "0", "stderr: {}", stderr(&o));
}

#[test]
fn several_files_report_all_and_take_the_worst_status() {
    let good = temp_spec(b"model M(x: f32[N, 4]) {\n    dense(3)\n}\n");
    let bad = temp_spec(b"model M(x: f32[N, 4]) {\n    dense(3 4)\n}\n");
    let o = modelc(&[
        "check",
        good.path().to_str().unwrap(),
        bad.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Failed 2 files: 1 error"),
        "{}",
        stderr(&o)
    );
    let o = modelc(&["check", bad.path().to_str().unwrap(), "missing.model"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Issue 22: a usage error next to an argument that is not UTF-8 (a file name from another
/// locale) is exit 2 with a usage diagnostic, not a panic (exit 101).
#[test]
fn usage_error_beside_a_non_utf8_argument_is_exit_2_not_a_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let odd = OsStr::from_bytes(b"spec\xff.model");
    for extra in [&[][..], &["--format", "json"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_modelc"))
            .arg("check")
            .arg("--bogus")
            .args(extra)
            .arg(odd)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(!stderr(&out).contains("internal error"), "{}", stderr(&out));
    }
    let json = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .args(["check", "--bogus", "--format", "json"])
        .arg(odd)
        .output()
        .unwrap();
    assert_eq!(json_lines(&json)[0]["code"], "E0902");
}

/// Issue 22: `compile --list-passes` needs no FILE; `compile` without one is still a usage
/// error.
#[test]
fn list_passes_needs_no_file() {
    let out = modelc(&["compile", "--list-passes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let names = String::from_utf8(out.stdout).unwrap();
    assert_eq!(names.lines().next(), Some("remove-dropout"));
    assert!(names.lines().any(|l| l == "fold-batch-norm"));
    assert_eq!(modelc(&["compile"]).status.code(), Some(2));
}
