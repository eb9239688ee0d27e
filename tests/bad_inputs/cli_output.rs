//! The cases of `tests/bad_inputs.rs` about the command line and its output (26 to 29):
//! unknown and conflicting flags, output equal to input, a closed stdout, no colour off a
//! terminal, and JSON that stays JSON when a command fails early.

use super::harness::{describe, json_lines, Case};
use super::{training, TINY};

pub fn bad_input_26_unknown_conflicting_flags_and_output_equal_to_input() {
    let case = Case::new(&[("a.model", TINY.as_bytes())]);
    for args in [
        &["check", "--bogus", "a.model"][..],
        &["compile", "a.model", "--emit", "ir", "-o", "p.ron"],
        &["compile", "a.model", "--mode", "sideways"],
        &["bench", "a.model", "--batch", "0"],
        &["train", "a.model", "--epochs", "0"],
        &["nonsense"],
    ] {
        let o = case.run(args);
        assert_eq!(o.status.code(), Some(2), "{}", describe(args, &o));
        assert!(
            String::from_utf8_lossy(&o.stderr).starts_with("error:"),
            "{}",
            describe(args, &o)
        );
        case.assert_unchanged_except(&[]);
    }
    case.expect(
        &["compile", "--format", "json", "a.model", "-o", "a.model"],
        2,
        &["E0903"],
    );
    case.expect(
        &["compile", "--format", "json", "a.model", "-o", "./a.model"],
        2,
        &["E0903"],
    );
    case.expect_writing(
        &["compile", "a.model", "-o", "plan.ron"],
        0,
        &[],
        &["plan.ron"],
    );
    let mut case = case;
    case.resnapshot();
    let x = training::npy_f32(&[2, 4], &[0.5; 8]);
    std::fs::write(case.path("x.npy"), x).unwrap();
    case.resnapshot();
    // The output may be neither the input array nor the plan.
    for output in ["x.npy", "plan.ron"] {
        let args = [
            "run",
            "--format",
            "json",
            "plan.ron",
            "--random-weights",
            "1",
            "--input",
            "x.npy",
            "-o",
            output,
        ];
        case.expect(&args, 2, &["E0903"]);
    }
    let o = case.run(&["data", "preview", "a.model", "-o", "a.model"]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&[], &o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("E0903"));
    case.assert_unchanged_except(&[]);
}

/// Runs with stdout a pipe closed before the first write, like `modelc ... | head -0`.
fn closed_stdout(case: &Case, args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(case.dir.path())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

pub fn bad_input_27_closed_stdout_is_not_a_panic() {
    let case = Case::new(&[("a.model", TINY.as_bytes()), ("bad.model", b"model M(")]);
    std::fs::write(
        case.path("x.npy"),
        training::npy_f32(&[300, 4], &[0.5; 1200]),
    )
    .unwrap();
    for args in [
        &["summary", "a.model"][..],
        &["summary", "--format", "json", "a.model"],
        &["check", "--format", "json", "bad.model"],
        &["compile", "a.model"],
        &["compile", "--emit", "ir", "a.model"],
        &["explain"],
        &["explain", "E0100"],
        &[
            "run",
            "a.model",
            "--random-weights",
            "1",
            "--input",
            "x.npy",
        ],
        &["bench", "a.model", "--iterations", "1", "--batch", "2"],
        &["data", "stats", "a.model"],
        &["train", "--format", "json", "a.model", "--out", "run"],
    ] {
        let o = closed_stdout(&case, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(0 | 1)) && !err.contains("internal error"),
            "{}",
            describe(args, &o)
        );
    }
}

pub fn bad_input_28_no_colour_or_redraws_off_a_terminal() {
    let case = Case::new(&[
        ("a.model", TINY.as_bytes()),
        ("bad.model", b"model M(x: f32[N, 4]) {\n densee(3)\n}\n"),
    ]);
    for env in [&[][..], &[("NO_COLOR", "1")], &[("TERM", "dumb")]] {
        for args in [
            &["check", "bad.model"][..],
            &["compile", "bad.model"],
            &["summary", "bad.model"],
            &[
                "run",
                "bad.model",
                "--random-weights",
                "1",
                "--input",
                "x.npy",
            ],
            &["bench", "bad.model"],
            &["data", "stats", "bad.model"],
            &["train", "bad.model"],
            &["eval", "bad.model", "--weights", "w.safetensors"],
            &["inspect", "bad.model"],
        ] {
            let o = case.run_env(args, env);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                matches!(o.status.code(), Some(1 | 2)),
                "{}",
                describe(args, &o)
            );
            assert!(err.contains("error"), "{}", describe(args, &o));
            assert!(!err.contains('\u{1b}'), "colour in {}", describe(args, &o));
        }
        // Training prints plain epoch lines, no progress-bar redraws (`--force`: each
        // environment trains again into the same folder).
        let o = case.run_env(&["train", "a.model", "--out", "run", "--force"], env);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(err.contains("epoch 2: loss"), "{err}");
        assert!(!err.contains('\u{1b}') && !err.contains('\r'), "{err:?}");
    }
}

pub fn bad_input_29_json_stays_json_on_early_failures() {
    let case = Case::new(&[]);
    for command in [
        &["check"][..],
        &["compile"],
        &["summary"],
        &["train"],
        &["eval", "--weights", "w.safetensors"],
        &["run", "--random-weights", "1", "--input", "x.npy"],
        &["bench"],
        &["inspect"],
        &["data", "stats"],
    ] {
        for (extra, code, status) in [
            (&["missing.model"][..], "E0900", 2),
            (&["missing.model", "--bogus"], "E0902", 2),
        ] {
            let mut args = command.to_vec();
            args.extend_from_slice(extra);
            args.extend_from_slice(&["--format", "json"]);
            let o = case.run(&args);
            assert_eq!(o.status.code(), Some(status), "{}", describe(&args, &o));
            let lines = json_lines(&o);
            assert_eq!(lines.len(), 1, "{}", describe(&args, &o));
            assert_eq!(lines[0]["code"], code, "{}", describe(&args, &o));
        }
    }
    // A bad flag value and a missing argument also stay JSON.
    for args in [
        &[
            "check",
            "--format",
            "json",
            "--max-nesting",
            "zero",
            "a.model",
        ][..],
        &["train", "--format", "json"],
    ] {
        let o = case.run(args);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(json_lines(&o)[0]["code"], "E0902", "{}", describe(args, &o));
    }
    case.assert_unchanged_except(&[]);
}
