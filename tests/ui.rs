//! Golden diagnostics: every `tests/ui/**/NAME.model` is checked with `modelc check` and the
//! rendered output (no colour) must equal `NAME.stderr` beside it; the exit status must equal
//! the one in `NAME.status` when present (else 1). Regenerate with `MODELC_BLESS=1 cargo test
//! --test ui`, then review the diff.

// Test code: a failed unwrap is a failed test; parsed numbers are compared exactly on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            cases(&p, out);
        } else if p.extension().is_some_and(|e| e == "model") {
            out.push(p);
        }
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
    let bless = std::env::var_os("MODELC_BLESS").is_some();
    let mut failures = Vec::new();
    for case in &all {
        let rel = case.strip_prefix(root).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_modelc"))
            .current_dir(root)
            .args(["--color", "never", "check"])
            .arg(rel)
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).replace('\\', "/");
        let status = output.status.code().unwrap_or(-1);
        let expected_path = case.with_extension("stderr");
        let status_path = case.with_extension("status");
        let want_status: i32 =
            std::fs::read_to_string(&status_path).map_or(1, |s| s.trim().parse().unwrap());
        if bless {
            std::fs::write(&expected_path, stderr.as_bytes()).unwrap();
            if status != 1 {
                std::fs::write(&status_path, format!("{status}\n")).unwrap();
            } else if status_path.exists() {
                std::fs::remove_file(&status_path).unwrap();
            }
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != stderr || status != want_status {
            failures.push(format!(
                "--- {} (status {status}, want {want_status})\n--- expected:\n{expected}\n--- got:\n{stderr}",
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
        text.push_str(&std::fs::read_to_string(case.with_extension("stderr")).unwrap_or_default());
    }
    let tested_elsewhere = tested_elsewhere();
    let mut missing = Vec::new();
    for info in modelc::diag::all_codes() {
        let code = info.code.as_str();
        let shown = text.contains(&format!("[{code}]"));
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
