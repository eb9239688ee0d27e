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

/// Every registered code has at least one ui case whose expected output shows it (in a
/// `.stderr`, or as `"code":"E...."` in a `.stdout`), except the few codes no spec and command
/// line can produce (listed with the reason).
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
        let exempt = tested_elsewhere.iter().any(|(c, _)| *c == code);
        if !shown && !exempt {
            missing.push(code);
        }
        assert!(
            !(shown && exempt),
            "{code} has a ui case now: take it off the list in tested_elsewhere()"
        );
        assert!(
            info.explanation.contains("```"),
            "{code} needs an explanation page with an example (src/diag/explain/{code}.md)"
        );
    }
    assert!(missing.is_empty(), "codes without a ui case: {missing:?}");
}

/// Codes no spec and command line can produce, with the reason and the test that covers each.
fn tested_elsewhere() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "E0904",
            "only a system that refuses memory produces it, which a golden cannot arrange: \
             tests/bad_inputs/memory.rs runs the binary under `ulimit -v` (a data set the \
             loader allocates fallibly, activations the allocator wrapper reports) and checks \
             the exit status, the code, and JSON on stdout",
        ),
        (
            "E0716",
            "a plan file whose derived parameter disagrees with its recipe is refused when it is \
             loaded (E0702, tests/ui/plans/inconsistent.ron); only a plan built in memory reaches \
             the weights check: runtime::interp::tests::derived_recipe_mismatch_is_e0716",
        ),
        (
            "E0809",
            "every model form the trainer cannot run is refused by `check` first (E0507, \
             tests/ui/training/unsupported_in_training.args), and so is every labels/loss \
             mismatch (E0503); a label value out of range in a data file is E0617. The trainer \
             keeps the refusal for plans built in memory: \
             runtime::train::tests::a_step_computing_integers_is_refused_as_unsupported",
        ),
        (
            "E0804",
            "every command that runs a plan first checks the same activation figure against \
             --max-activation-bytes (E0810, tests/ui/run/activation_limit.args), and gives the \
             interpreter that limit as its budget; only the library reaches the interpreter's own \
             refusal: runtime::interp::tests::memory_budget_is_checked_before_allocating",
        ),
    ]
}
