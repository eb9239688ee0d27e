//! Golden diagnostics. A case is a file under `tests/ui/**/`:
//!
//! - `NAME.model` alone: run as `modelc --color never check NAME.model`;
//! - `NAME.args` (with or without a `NAME.model` beside it): the case carries its own command,
//!   so plans, weights, data files, runs and training get golden output too. The file's first
//!   line that is not empty and does not start with `#` holds the arguments after
//!   `modelc --color never`, split on whitespace (`#` lines say what the case is about). Four
//!   placeholders are replaced before running:
//!   `{model}` → the case's `NAME.model`, `{dir}` → the case's folder (for sibling inputs such
//!   as `NAME.ron`, `NAME.npy`, `NAME.safetensors`), `{fixtures}` → `tests/fixtures`, and
//!   `{tmp}` → a fresh empty folder for the case's outputs (written back as `{tmp}` in the
//!   output, so goldens do not depend on where temporary folders live).
//!
//! Commands run from the repository root. The rendered stderr (no colour) must equal
//! `NAME.stderr`; for `.args` cases stdout must also equal `NAME.stdout` (absent = empty), so
//! `--format json` cases are golden too. The exit status must equal `NAME.status` when present
//! (else 1). Regenerate with `MODELC_BLESS=1 cargo test --test ui`, then review the diff.

// Test code: a failed unwrap is a failed test; parsed numbers are compared exactly on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp
)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every case, as its `.model` path or, for a case without a model, its `.args` path.
fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            cases(&p, out);
        } else if p.extension().is_some_and(|e| e == "model")
            || (p.extension().is_some_and(|e| e == "args") && !p.with_extension("model").exists())
        {
            out.push(p);
        }
    }
}

/// The arguments of a case: its `.args` line with the placeholders replaced, or `check MODEL`.
fn case_args(root: &Path, case: &Path, tmp: &Path) -> Vec<String> {
    let rel = case.strip_prefix(root).unwrap();
    let args_path = case.with_extension("args");
    let Ok(text) = std::fs::read_to_string(&args_path) else {
        return vec!["check".into(), rel.display().to_string()];
    };
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_else(|| panic!("{} has no command line", args_path.display()));
    let dir = rel.parent().unwrap().display().to_string();
    line.split_whitespace()
        .map(|a| {
            a.replace(
                "{model}",
                &rel.with_extension("model").display().to_string(),
            )
            .replace("{dir}", &dir)
            .replace("{fixtures}", "tests/fixtures")
            .replace("{tmp}", &tmp.display().to_string())
        })
        .collect()
}

/// Writes `text` to `path`, or removes `path` when `text` is empty.
fn bless(path: &Path, text: &str) {
    if text.is_empty() {
        if path.exists() {
            std::fs::remove_file(path).unwrap();
        }
    } else {
        std::fs::write(path, text.as_bytes()).unwrap();
    }
}

#[test]
fn ui() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    cases(&root.join("tests/ui"), &mut all);
    assert!(
        all.len() >= 20,
        "expected at least 20 ui cases, found {}",
        all.len()
    );
    let bless_all = std::env::var_os("MODELC_BLESS").is_some();
    let mut failures = Vec::new();
    for case in &all {
        let rel = case.strip_prefix(root).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let carries_command = case.with_extension("args").exists();
        let output = Command::new(env!("CARGO_BIN_EXE_modelc"))
            .current_dir(root)
            .args(["--color", "never"])
            .args(case_args(root, case, tmp.path()))
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        let shown = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .replace(&tmp.path().display().to_string(), "{tmp}")
                .replace('\\', "/")
        };
        let stderr = shown(&output.stderr);
        let stdout = if carries_command {
            shown(&output.stdout)
        } else {
            String::new()
        };
        let status = output.status.code().unwrap_or(-1);
        let expected_path = case.with_extension("stderr");
        let stdout_path = case.with_extension("stdout");
        let status_path = case.with_extension("status");
        let want_status: i32 =
            std::fs::read_to_string(&status_path).map_or(1, |s| s.trim().parse().unwrap());
        if bless_all {
            std::fs::write(&expected_path, stderr.as_bytes()).unwrap();
            bless(&stdout_path, &stdout);
            bless(
                &status_path,
                &if status == 1 {
                    String::new()
                } else {
                    format!("{status}\n")
                },
            );
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        let expected_out = std::fs::read_to_string(&stdout_path).unwrap_or_default();
        if expected != stderr || expected_out != stdout || status != want_status {
            failures.push(format!(
                "--- {} (status {status}, want {want_status})\n--- expected:\n{expected}{expected_out}\n--- got:\n{stderr}{stdout}",
                rel.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} ui case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every registered code has at least one ui case whose expected output shows it, except codes
/// that cannot come from `modelc check` on a file (listed with the reason).
#[test]
fn every_code_has_a_ui_case() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    cases(&root.join("tests/ui"), &mut all);
    let mut text = String::new();
    for case in &all {
        for ext in ["stderr", "stdout"] {
            text.push_str(&std::fs::read_to_string(case.with_extension(ext)).unwrap_or_default());
        }
    }
    let tested_elsewhere = tested_elsewhere();
    let mut missing = Vec::new();
    for info in modelc::diag::all_codes() {
        let code = info.code.as_str();
        let shown =
            text.contains(&format!("[{code}]")) || text.contains(&format!("\"code\":\"{code}\""));
        if !shown && !tested_elsewhere.iter().any(|(c, _)| *c == code) {
            missing.push(code);
        }
    }
    assert!(missing.is_empty(), "codes without a ui case: {missing:?}");
}

/// Codes a `.model` ui case cannot produce, and the test that covers each instead.
fn tested_elsewhere() -> Vec<(&'static str, &'static str)> {
    vec![
        ("E0105", "tests/cli.rs: source_size_limit"),
        ("E0106", "tests/cli.rs: invalid_utf8"),
        ("E0107", "tests/cli.rs: nul_byte"),
        ("E0108", "tests/cli.rs: bidi_control"),
        ("E0900", "tests/cli.rs: missing_file_is_io_error"),
        ("E0610", "src/data/source/tests.rs"),
        ("E0611", "src/data/source/tests.rs"),
        ("E0612", "src/data/source/tests.rs"),
        ("E0613", "src/data/source/tests.rs"),
        ("E0614", "src/data/source/tests.rs"),
        ("E0615", "src/data/source/tests.rs"),
        ("E0616", "src/data/source/tests.rs"),
        ("E0617", "src/data/source/tests.rs"),
        ("E0618", "src/data/source/tests.rs"),
        ("E0619", "src/data/source/tests.rs"),
        ("E0620", "src/data/loader_tests.rs"),
        ("E0621", "src/data/source/tests.rs: sources_past_the_memory_budget_are_refused_before_allocating"),
        ("E0622", "src/data/source/tests.rs: a_corrupt_gzip_stream_is_a_data_error"),
        ("E0408", "tests/bad_inputs.rs: bad_input_06_deep_nesting_and_long_pipes (100,000 layers)"),
        ("E0807", "tests/train.rs: divergence_stops_with_the_step_and_layer"),
        ("E0808", "tests/train.rs: a_checkpoint_from_another_spec_is_refused"),
        ("E0810", "tests/bad_inputs.rs: bad_input_13_overflowing_and_terabyte_shapes"),
        ("E0809", "src/fit: raised for trainer errors other than divergence (unsupported layer forms)"),
        ("E0901", "tests/compile.rs: unwritable_output"),
        ("E0902", "tests/cli.rs: bad_flag_with_json_format"),
        ("E0903", "tests/compile.rs: output_equal_to_input"),
        ("E1000", "tests/compile.rs: unsupported_construct"),
        // Plans, weights and running: no `.model` file produces these; unit tests in
        // src/runtime/interp/tests.rs and tests/interp.rs assert each code.
        (
            "E0700",
            "runtime::interp::tests::plan_errors_map_to_e07_codes",
        ),
        (
            "E0701",
            "runtime::interp::tests::plan_errors_map_to_e07_codes",
        ),
        (
            "E0702",
            "runtime::interp::tests::plan_errors_map_to_e07_codes",
        ),
        (
            "E0710",
            "runtime::interp::tests::malformed_weight_files_are_errors_not_panics",
        ),
        (
            "E0711",
            "runtime::interp::tests::every_weights_problem_is_reported_by_name",
        ),
        (
            "E0712",
            "runtime::interp::tests::every_weights_problem_is_reported_by_name",
        ),
        (
            "E0713",
            "runtime::interp::tests::every_weights_problem_is_reported_by_name",
        ),
        (
            "E0714",
            "runtime::interp::tests::every_weights_problem_is_reported_by_name",
        ),
        (
            "E0715",
            "runtime::interp::tests::every_weights_problem_is_reported_by_name",
        ),
        (
            "E0716",
            "runtime::interp::tests::derived_recipe_mismatch_is_e0716",
        ),
        (
            "E0717",
            "runtime::interp::tests::fresh_weights_over_the_parameter_limit_are_e0717",
        ),
        (
            "E0800",
            "runtime::interp::tests::inputs_are_checked_against_the_signature",
        ),
        (
            "E0801",
            "runtime::interp::tests::inputs_are_checked_against_the_signature",
        ),
        (
            "E0802",
            "runtime::interp::tests::inputs_are_checked_against_the_signature",
        ),
        (
            "E0803",
            "runtime::interp::tests::inputs_are_checked_against_the_signature",
        ),
        (
            "E0804",
            "runtime::interp::tests::memory_budget_is_checked_before_allocating",
        ),
        (
            "E0805",
            "runtime::interp::tests::lstm_classifier_runs_and_refuses_out_of_range_tokens",
        ),
        ("E0806", "runtime::interp::tests::kernel_failures_are_e0806"),
    ]
}
