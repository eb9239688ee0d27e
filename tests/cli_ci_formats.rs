//! The command line in CI: `check --format sarif`, `fmt --check --format github|json`, the
//! pre-commit hooks and the GitHub Action (their `modelc` lines run against the built binary),
//! the "Limits" help heading and every command's "Examples:" section (some lines run).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn modelc_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn modelc(args: &[&str]) -> Output {
    modelc_in(Path::new(ROOT), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The shipped specs, sorted, as paths relative to the repository.
fn shipped_specs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("specs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "model"))
        .map(|p| format!("specs/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "{v:?}");
    v
}

/// A folder holding `broken.model`: an unknown layer (E0200) on line 3, and not formatted.
fn broken_spec() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.model");
    std::fs::write(
        &path,
        "model M(x: f32[N, 4])  {\n    dense(3)\n    Linear(10)\n}\n",
    )
    .unwrap();
    (dir, path)
}

// ---- SARIF ----

#[test]
fn sarif_log_of_a_bad_spec_names_rule_level_and_region() {
    let case = "tests/ui/names/pytorch_linear.model";
    let o = modelc(&["check", "--format", "sarif", case]);
    assert_eq!(o.status.code(), Some(1));
    let log: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"]
        .as_str()
        .unwrap()
        .ends_with("sarif-schema-2.1.0.json"));
    let run = &log["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "modelc");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(run["columnKind"], "unicodeCodePoints");
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["id"], "E0200");
    assert_eq!(rules[0]["shortDescription"]["text"], "unknown layer");
    // The first paragraph of src/diag/explain/E0200.md.
    assert_eq!(
        rules[0]["fullDescription"]["text"],
        "A model body calls a layer modelc does not know."
    );
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(r["ruleId"], "E0200");
    assert_eq!(r["ruleIndex"], 0);
    assert_eq!(r["level"], "error");
    let text = r["message"]["text"].as_str().unwrap();
    assert!(text.starts_with("unknown layer `Linear`"), "{text}");
    assert!(text.contains("the layer here is `dense`"), "{text}");
    let p = &r["locations"][0]["physicalLocation"];
    assert_eq!(p["artifactLocation"]["uri"], case);
    // `    Linear(10)` on line 3: the name is columns 5 to 10, so the exclusive end is 11.
    assert_eq!(p["region"]["startLine"], 3);
    assert_eq!(p["region"]["startColumn"], 5);
    assert_eq!(p["region"]["endLine"], 3);
    assert_eq!(p["region"]["endColumn"], 11);
}

#[test]
fn sarif_of_clean_specs_is_a_log_with_no_results() {
    let o = modelc(&["check", "--format", "sarif", "specs"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let log: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
    assert!(o.stderr.is_empty());
}

#[test]
fn sarif_is_refused_with_watch_and_on_other_commands() {
    let o = modelc(&["check", "--watch", "--format", "sarif", "specs"]);
    assert_eq!(o.status.code(), Some(2));
    let log: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "E0902");
    let o = modelc(&["compile", "--format", "sarif", "specs/seed_cnn.model"]);
    assert_eq!(o.status.code(), Some(2));
}

// ---- fmt --check in machine formats ----

#[test]
fn fmt_check_github_annotates_the_first_changed_line() {
    let (dir, path) = broken_spec();
    let shown = path.display().to_string();
    let o = modelc_in(
        dir.path(),
        &["fmt", "--check", "--format", "github", "broken.model"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "::error file=broken.model,line=1,col=1,endLine=1,endColumn=25,title=modelc E0113::\
         [E0113] broken.model is not formatted: `modelc fmt` changes line 1\
         %0A= note: formatted:%0Amodel M(x: f32[N, 4]) {\
         %0A= help: run `modelc fmt broken.model`\n"
    );
    // --check wrote nothing.
    assert!(
        std::fs::read_to_string(&path).unwrap().contains(")  {"),
        "{shown}"
    );
    let clean = modelc(&[
        "fmt",
        "--check",
        "--format",
        "github",
        "specs/seed_cnn.model",
    ]);
    assert_eq!(clean.status.code(), Some(0));
    assert!(clean.stdout.is_empty());
}

#[test]
fn fmt_check_json_has_the_diagnostics_schema_of_check() {
    let (dir, _) = broken_spec();
    let fmt = modelc_in(
        dir.path(),
        &["fmt", "--check", "--format", "json", "broken.model"],
    );
    assert_eq!(fmt.status.code(), Some(1));
    let check = modelc_in(dir.path(), &["check", "--format", "json", "broken.model"]);
    let first = |o: &Output| -> serde_json::Value {
        serde_json::from_str(stdout(o).lines().next().unwrap()).unwrap()
    };
    let (f, c) = (first(&fmt), first(&check));
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&f), keys(&c));
    assert_eq!(f["code"], "E0113");
    assert_eq!(f["file"], "broken.model");
    assert_eq!(
        (f["line"].clone(), f["end_line"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(f["notes"][0], "formatted:\nmodel M(x: f32[N, 4]) {");
}

// ---- pre-commit hooks and the GitHub Action ----

/// `(id, entry)` of each hook in `.pre-commit-hooks.yaml`, read as text.
fn hooks() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(".pre-commit-hooks.yaml")).unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("- id: ") {
            out.push((id.trim().to_string(), String::new()));
        } else if let Some(entry) = line.trim().strip_prefix("entry: ") {
            out.last_mut().unwrap().1 = entry.trim().to_string();
        }
    }
    out
}

/// Runs a command line whose first word is `modelc`, with `files` appended.
fn run_line(dir: &Path, line: &str, files: &[String]) -> Output {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"modelc"), "{line}");
    let mut args: Vec<&str> = words[1..].to_vec();
    args.extend(files.iter().map(String::as_str));
    modelc_in(dir, &args)
}

#[test]
fn pre_commit_hooks_run_check_and_fmt_on_the_shipped_specs() {
    let hooks = hooks();
    let ids: Vec<&str> = hooks.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["modelc-check", "modelc-fmt"]);
    assert_eq!(hooks[0].1, "modelc check");
    assert_eq!(hooks[1].1, "modelc fmt --check");
    let text = std::fs::read_to_string(Path::new(ROOT).join(".pre-commit-hooks.yaml")).unwrap();
    assert_eq!(text.matches(r"files: \.model$").count(), 2);
    for (id, entry) in &hooks {
        let help = run_line(Path::new(ROOT), entry, &["--help".to_string()]);
        assert_eq!(help.status.code(), Some(0), "{id}");
        // pre-commit passes the staged file names after the entry.
        let o = run_line(Path::new(ROOT), entry, &shipped_specs());
        assert_eq!(o.status.code(), Some(0), "{id}: {o:?}");
        let (dir, _) = broken_spec();
        let bad = run_line(dir.path(), entry, &["broken.model".to_string()]);
        assert_eq!(bad.status.code(), Some(1), "{id}: {bad:?}");
    }
}

/// The `modelc` command lines of `action.yml`'s steps.
fn action_lines() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("action.yml")).unwrap();
    assert!(text.contains("using: composite"));
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("modelc "))
        .map(str::to_string)
        .collect()
}

/// The `.model` files a bash `**/*.model` glob finds below `dir`, relative to it, sorted.
fn glob_models(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if p.extension().is_some_and(|x| x == "model") {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn the_action_checks_and_fmt_checks_specs_with_annotations() {
    let lines = action_lines();
    assert_eq!(
        lines,
        [
            "modelc check --format github $MODELC_SPECS",
            "modelc fmt --check --format github $MODELC_SPECS"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("specs")).unwrap();
    for spec in shipped_specs() {
        std::fs::copy(Path::new(ROOT).join(&spec), dir.path().join(&spec)).unwrap();
    }
    for line in &lines {
        let spec_line = line.replace(" $MODELC_SPECS", "");
        let o = run_line(dir.path(), &spec_line, &glob_models(dir.path()));
        assert_eq!(o.status.code(), Some(0), "{line}: {o:?}");
        assert!(o.stdout.is_empty(), "{line}: {}", stdout(&o));
    }
    std::fs::copy(broken_spec().1, dir.path().join("specs/broken.model")).unwrap();
    let expected = [
        "::error file=specs/broken.model,line=3,col=5,endLine=3,endColumn=11,title=modelc E0200::",
        "::error file=specs/broken.model,line=1,col=1,endLine=1,endColumn=25,title=modelc E0113::",
    ];
    for (line, expected) in lines.iter().zip(expected) {
        let spec_line = line.replace(" $MODELC_SPECS", "");
        let o = run_line(dir.path(), &spec_line, &glob_models(dir.path()));
        assert_eq!(o.status.code(), Some(1), "{line}");
        let out = stdout(&o);
        assert!(out.starts_with(expected), "{line}: {out}");
        assert_eq!(out.lines().count(), 1, "{out}");
    }
}

// ---- help: limits and examples ----

const LIMIT_FLAGS: [&str; 5] = [
    "--max-source-bytes",
    "--max-nesting",
    "--max-errors",
    "--max-layers",
    "--max-param-bytes",
];

#[test]
fn limit_flags_are_under_limits_in_long_help_and_hidden_from_short_help() {
    for (command, extra) in [
        ("check", None),
        ("fmt", None),
        ("train", Some("--max-activation-bytes")),
        ("run", None),
    ] {
        let short = stdout(&modelc(&[command, "-h"]));
        assert!(!short.contains("--max-"), "{command} -h: {short}");
        let long = stdout(&modelc(&[command, "--help"]));
        let limits = long
            .split("\nLimits:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{command} --help has no Limits heading:\n{long}"));
        let limits = limits.split("\nExamples:\n").next().unwrap();
        let expected: Vec<&str> = if command == "run" {
            vec!["--max-activation-bytes"]
        } else {
            LIMIT_FLAGS.iter().copied().chain(extra).collect()
        };
        for flag in expected {
            assert!(limits.contains(flag), "{command}: {flag} not under Limits");
        }
        let options = long.split("\nLimits:\n").next().unwrap();
        assert!(
            !options.contains("--max-"),
            "{command}: a limit outside Limits"
        );
    }
}

/// The subcommands `modelc --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let help = stdout(&modelc(&["--help"]));
    let commands = help.split("Commands:\n").nth(1).unwrap();
    commands
        .lines()
        .take_while(|l| l.starts_with("  "))
        // A command starts its line; a wrapped description is indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The example lines of a subcommand's `--help`.
fn examples(command: &str) -> Vec<String> {
    let help = stdout(&modelc(&[command, "--help"]));
    let section = help
        .split("\nExamples:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("`modelc {command} --help` has no Examples section"));
    section
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_command_ends_with_examples_of_itself() {
    let commands = subcommands();
    assert!(commands.len() >= 15, "{commands:?}");
    for command in &commands {
        let lines = examples(command);
        assert!(!lines.is_empty(), "{command}");
        for l in &lines {
            assert!(
                l.starts_with(&format!("modelc {command}")),
                "{command}: {l}"
            );
        }
        let short = stdout(&modelc(&[command, "-h"]));
        assert!(!short.contains("Examples:"), "{command} -h");
    }
}

#[test]
fn example_lines_run_against_the_shipped_specs() {
    // From a copy of the repository's specs and data, as a user's checkout would be; the
    // commands that need a trained run (`runs/...`) or take long are not run here.
    let dir = tempfile::tempdir().unwrap();
    for folder in ["specs", "data"] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
        for e in std::fs::read_dir(Path::new(ROOT).join(folder)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dir.path().join(folder).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_modelc")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for command in ["check", "explain", "summary", "compile", "inspect", "fmt"] {
        for line in examples(command) {
            if line.contains("runs/") {
                continue;
            }
            let o = Command::new("sh")
                .arg("-c")
                .arg(&line)
                .current_dir(dir.path())
                .env("PATH", &path)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(0), "`{line}` failed: {o:?}");
            ran += 1;
        }
    }
    assert!(ran >= 15, "{ran}");
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("modelc.sarif")).unwrap()).unwrap();
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
}

// ---- the converters in tools/ (opt-in: they need Python with torch, h5py and numpy) ----

/// Builds PyTorch models matching two specs, converts their state_dicts with
/// `tools/torch_to_safetensors.py`, runs `modelc run` on the weights and compares the outputs
/// with PyTorch's own (an independent implementation of the same layers).
const TORCH_ROUND_TRIP: &str = r#"
import subprocess, sys
import numpy as np, torch, torch.nn as nn
modelc, tools, tmp = sys.argv[1:4]
torch.manual_seed(7)

class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.bn = nn.BatchNorm2d(4, eps=1e-3)
        self.fc = nn.Linear(64, 3)
    def forward(self, x):  # x: NHWC, as modelc takes it
        y = self.bn(self.conv(x.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
        return self.fc(y.flatten(1))

class Rnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(2, 4, batch_first=True)
        self.lstm = nn.LSTM(4, 3, batch_first=True)
    def forward(self, x):
        y, _ = self.gru(x)
        _, (h, _) = self.lstm(y)
        return h[0]

CNN = "model Cnn(image: f32[N, 6, 6, 2]) -> f32[N, 3] {\n    conv2d(4, 3)\n    batch_norm()\n    flatten()\n    dense(3)\n}\n"
RNN = "model Rnn(seq: f32[N, 5, 2]) -> f32[N, 3] {\n    gru(4, return_sequences: true)\n    lstm(3)\n}\n"
worst = 0.0
for name, model, spec, shape in [("cnn", Cnn(), CNN, (3, 6, 6, 2)), ("rnn", Rnn(), RNN, (3, 5, 2))]:
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.5, 0.5)
        if name == "cnn":
            model.bn.running_mean.uniform_(-0.2, 0.2)
            model.bn.running_var.uniform_(0.5, 1.5)
    model.eval()
    spec_path, pt, st = f"{tmp}/{name}.model", f"{tmp}/{name}.pt", f"{tmp}/{name}.safetensors"
    open(spec_path, "w").write(spec)
    torch.save(model.state_dict(), pt)
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    np.save(f"{tmp}/{name}_x.npy", x)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    subprocess.run([sys.executable, f"{tools}/torch_to_safetensors.py", pt, "--spec", spec_path,
                    "--modelc", modelc, "-o", st], check=True)
    subprocess.run([modelc, "run", spec_path, "--weights", st, "--input", f"{tmp}/{name}_x.npy",
                    "-o", f"{tmp}/{name}_y.npy"], check=True)
    got = np.load(f"{tmp}/{name}_y.npy")
    assert got.shape == want.shape, (name, got.shape, want.shape)
    worst = max(worst, float(np.abs(got - want).max()))
assert worst < 1e-4, worst
print(f"max abs difference {worst:.2e}")
"#;

#[test]
fn torch_converter_matches_pytorch_outputs_when_python_is_given() {
    let Some(python) = std::env::var_os("MODELC_TEST_PYTHON") else {
        eprintln!(
            "skipped: set MODELC_TEST_PYTHON to a python with torch and numpy to run the \
             converter round trip"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("round_trip.py");
    std::fs::write(&script, TORCH_ROUND_TRIP).unwrap();
    let o = Command::new(python)
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_modelc"))
        .arg(Path::new(ROOT).join("tools"))
        .arg(dir.path())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("max abs difference"), "{out}");
}

/// Writes a Keras 2 HDF5 weights file (`layer_names`/`weight_names` attributes, as Keras's
/// `save_weights` lays it out) and a Keras 3 `.keras` archive (`config.json` and
/// `layers/NAME/vars/I` in `model.weights.h5`) for `specs/linear_regression.model`, converts
/// both with `tools/keras_to_safetensors.py`, and compares `modelc run` with NumPy's x·W + b.
const KERAS_ROUND_TRIP: &str = r#"
import io, json, subprocess, sys, zipfile
import h5py, numpy as np
modelc, tools, spec, tmp = sys.argv[1:5]
rng = np.random.default_rng(0)
kernel, bias = rng.normal(size=(16, 1)).astype("f4"), rng.normal(size=(1,)).astype("f4")
with h5py.File(f"{tmp}/w.h5", "w") as f:
    f.attrs["layer_names"] = [b"dense"]
    g = f.create_group("dense")
    g.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
    g.create_dataset("dense/kernel:0", data=kernel)
    g.create_dataset("dense/bias:0", data=bias)
buf = io.BytesIO()
with h5py.File(buf, "w") as f:
    f.create_dataset("layers/dense/vars/0", data=kernel)
    f.create_dataset("layers/dense/vars/1", data=bias)
config = {"class_name": "Sequential", "config": {"layers": [
    {"class_name": "InputLayer", "config": {"name": "input_layer"}},
    {"class_name": "Dense", "config": {"name": "dense"}}]}}
with zipfile.ZipFile(f"{tmp}/m.keras", "w") as z:
    z.writestr("metadata.json", "{}")
    z.writestr("config.json", json.dumps(config))
    z.writestr("model.weights.h5", buf.getvalue())
x = rng.uniform(-1, 1, (4, 16)).astype("f4")
np.save(f"{tmp}/x.npy", x)
for source in ("w.h5", "m.keras"):
    out = f"{tmp}/{source}.safetensors"
    subprocess.run([sys.executable, f"{tools}/keras_to_safetensors.py", f"{tmp}/{source}",
                    "--spec", spec, "--modelc", modelc, "-o", out], check=True)
    subprocess.run([modelc, "run", spec, "--weights", out, "--input", f"{tmp}/x.npy",
                    "--no-preprocess", "-o", f"{tmp}/y.npy"], check=True)
    got = np.load(f"{tmp}/y.npy")
    assert np.abs(got - (x @ kernel + bias)).max() < 1e-5, (source, got)
print("keras files converted")
"#;

#[test]
fn keras_converter_reads_keras_2_and_3_layouts_when_python_is_given() {
    let Some(python) = std::env::var_os("MODELC_TEST_PYTHON") else {
        eprintln!("skipped: set MODELC_TEST_PYTHON to a python with h5py and numpy");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("keras_round_trip.py");
    std::fs::write(&script, KERAS_ROUND_TRIP).unwrap();
    let o = Command::new(python)
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_modelc"))
        .arg(Path::new(ROOT).join("tools"))
        .arg(Path::new(ROOT).join("specs/linear_regression.model"))
        .arg(dir.path())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("keras files converted"), "{out}");
}
