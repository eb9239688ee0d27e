#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `modelc export FILE.model --to pytorch -o DIR`: golden files of the package for the shipped
//! specs (`MODELC_BLESS=1` rewrites them), the synthetic sources' `.npy` files, E1201 at a
//! layer with no PyTorch form; and, when `MODELC_TEST_PYTHON` names a Python with torch, the
//! exported module against `modelc run` within 1e-4 on the same weights.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn modelc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_modelc"));
    c.current_dir(root());
    c
}

const SPECS: [&str; 8] = [
    "seed_cnn",
    "seed_rnn",
    "linear_regression",
    "series_lstm",
    "sunspots_conv1d",
    "text_bilstm",
    "text_transformer",
    "text_masked_bilstm",
];
/// Small specs exercising the layers no shipped spec holds (checked against `modelc run` too).
const FIXTURES: [&str; 3] = ["attention", "images", "masked"];
/// Fixtures whose packages are golden-tested too (the train block's features no shipped spec
/// holds: a schedule chain with reduce_on_plateau, class metrics, class_weight, stratify).
const GOLDEN_FIXTURES: [&str; 1] = ["classes"];
const TEXT_FILES: [&str; 4] = ["model.py", "data.py", "train.py", "README.md"];

/// A package file with its `DATA_ROOT` line (which depends on where the test exports to)
/// replaced by a placeholder.
fn masked(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("DATA_ROOT = ") {
                "DATA_ROOT = <where the test exported to>"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A shipped spec's path, or a fixture's (`fixtures/NAME`).
fn spec_path(spec: &str) -> String {
    match spec.strip_prefix("fixtures/") {
        Some(name) => format!("tests/export_pytorch/fixtures/{name}.model"),
        None => format!("specs/{spec}.model"),
    }
}

fn export(spec: &str, dir: &Path) {
    let out = modelc()
        .args(["export", &spec_path(spec), "--to", "pytorch", "-o"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh folder under the system's temporary folder, removed when the test that made it
/// passes (kept when it fails, to look at).
fn tmp(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("modelc-torch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

/// A folder of [`tmp`]; used as a `Path`.
struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TmpDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl AsRef<Path> for TmpDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn packages_of_the_shipped_specs_match_their_goldens() {
    let bless = std::env::var_os("MODELC_BLESS").is_some();
    let fixtures = GOLDEN_FIXTURES.map(|f| format!("fixtures/{f}"));
    for spec in SPECS
        .iter()
        .copied()
        .chain(fixtures.iter().map(String::as_str))
    {
        let name = spec.trim_start_matches("fixtures/");
        let dir = tmp(name);
        export(spec, &dir);
        let golden = root().join("tests/export_pytorch").join(name);
        for file in TEXT_FILES {
            let got = masked(&std::fs::read_to_string(dir.join(file)).unwrap());
            let path = golden.join(format!("{file}.golden"));
            if bless {
                std::fs::create_dir_all(&golden).unwrap();
                std::fs::write(&path, &got).unwrap();
            } else {
                let want = std::fs::read_to_string(&path)
                    .unwrap_or_else(|_| panic!("no golden {}", path.display()));
                assert!(got == want, "{spec}/{file} differs from {}", path.display());
            }
        }
        // exporting twice gives the same bytes, synthetic samples included
        let again = tmp(&format!("{name}-again"));
        export(spec, &again);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name();
            assert_eq!(
                std::fs::read(dir.join(&name)).unwrap(),
                std::fs::read(again.join(&name)).unwrap(),
                "{spec}/{name:?} is not deterministic"
            );
        }
    }
}

#[test]
fn the_default_data_root_is_the_spec_folder_seen_from_the_package() {
    let dir = tmp("data-root");
    let spec = dir.join("s.model");
    let text = std::fs::read_to_string(root().join("tests/export_pytorch/fixtures/classes.model"))
        .unwrap()
        .replace("../../../data/digits.csv", "digits.csv");
    std::fs::write(&spec, text).unwrap();
    for out in ["pkg", "runs/a/pkg"] {
        let out = modelc()
            .args(["export", "--to", "pytorch", "-o"])
            .arg(dir.join(out))
            .arg(&spec)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (out, want) in [("pkg", "\"..\""), ("runs/a/pkg", "\"../../..\"")] {
        let data = std::fs::read_to_string(dir.join(out).join("data.py")).unwrap();
        let line = data
            .lines()
            .find(|l| l.starts_with("DATA_ROOT = "))
            .unwrap();
        assert_eq!(
            line,
            format!("DATA_ROOT = os.path.normpath(os.path.join(HERE, {want}))")
        );
    }
}

#[test]
fn a_synthetic_source_is_written_as_npy_with_modelc_samples() {
    let dir = tmp("rnn-npy");
    export("seed_rnn", &dir);
    let bytes = std::fs::read(dir.join("source_features.npy")).unwrap();
    // 2000 sequences of 100 ids as f32: the header, then 800000 bytes
    assert!(bytes.starts_with(b"\x93NUMPY"));
    assert!(String::from_utf8_lossy(&bytes[..128]).contains("(2000, 100)"));
    assert_eq!(bytes.len(), 128 + 2000 * 100 * 4);
    let labels = std::fs::read(dir.join("source_labels.npy")).unwrap();
    assert_eq!(labels.len(), 128 + 2000 * 4);
    // every id is an integer below the vocabulary (1000), every label below 10 classes
    let ids: Vec<f32> = bytes[128..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert!(ids
        .iter()
        .all(|&v| v.fract() == 0.0 && (0.0..1000.0).contains(&v)));
    assert!(ids.iter().any(|&v| v > 500.0));
}

#[test]
fn a_layer_without_a_pytorch_form_is_e1201_at_its_line() {
    let dir = tmp("e1201");
    let spec = dir.join("m.model");
    std::fs::write(
        &spec,
        "model M(t: i32[N, 20]) -> f32[N, 2] {\n    embedding(100, 8)\n    gru(16, reset_after: false)\n    dense(2, activation: softmax)\n}\n\
         data D {\n    source tokens(n: 100, length: 20, vocab: 100, classes: 2, seed: 1)\n    batch 10\n}\n\
         train M on D {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 1e-3)\n    epochs 1\n}\n",
    )
    .unwrap();
    let out = modelc()
        .args(["export", "--to", "pytorch", "--color", "never", "-o"])
        .arg(dir.join("pkg"))
        .arg(&spec)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error[E1201]: layer `gru` has no PyTorch form"),
        "{err}"
    );
    assert!(err.contains(":3:5"), "{err}");
    assert!(err.contains("reset_after"), "{err}");
    assert!(!dir.join("pkg").exists());
}

#[test]
/// Two `top_k_accuracy` columns would share one name in metrics.csv: `check` refuses them
/// (E0520) before the export writes anything.
fn two_top_k_accuracies_are_refused_by_check_before_export() {
    let dir = tmp("e1201-metric");
    let spec = dir.join("m.model");
    std::fs::write(
        &spec,
        "model M(t: i32[N, 5]) -> f32[N, 2] {\n    embedding(10, 3)\n    flatten()\n    dense(2, activation: softmax)\n}\n\
         data D {\n    source tokens(n: 20, length: 5, vocab: 10, classes: 2, seed: 1)\n    batch 10\n}\n\
         train M on D {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 1e-3)\n    epochs 1\n    metrics [accuracy, f1, top_k_accuracy(k: 1), top_k_accuracy(k: 2)]\n}\n",
    )
    .unwrap();
    let out = modelc()
        .args(["export", "--to", "pytorch", "--color", "never", "-o"])
        .arg(dir.join("pkg"))
        .arg(&spec)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error[E0520]"), "{err}");
    assert!(!err.contains("E1201"), "{err}");
    assert!(!dir.join("pkg").exists());
}

#[test]
fn target_inputs_is_e1201_at_the_train_block() {
    let dir = tmp("e1201-target-inputs");
    let spec = dir.join("m.model");
    std::fs::write(
        &spec,
        "model M(x: f32[N, 3]) -> f32[N, 3] {\n    dense(2)\n    dense(3)\n}\n\
         data D {\n    source regression(n: 20, features: 3, seed: 1)\n    batch 10\n}\n\
         train M on D {\n    loss mse\n    optimizer adam(lr: 1e-3)\n    epochs 1\n    target inputs\n}\n",
    )
    .unwrap();
    let out = modelc()
        .args(["export", "--to", "pytorch", "--color", "never", "-o"])
        .arg(dir.join("pkg"))
        .arg(&spec)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error[E1201]: the `target inputs` setting has no PyTorch form"),
        "{err}"
    );
    assert!(err.contains(":9:1"), "{err}");
    assert!(!dir.join("pkg").exists());
}

#[test]
fn the_exported_module_gives_modelc_outputs_when_python_has_torch() {
    let Some(python) = std::env::var_os("MODELC_TEST_PYTHON") else {
        eprintln!(
            "skipped: MODELC_TEST_PYTHON is not set (a Python with torch, numpy, safetensors)"
        );
        return;
    };
    let fixtures = FIXTURES.map(|f| format!("fixtures/{f}"));
    for spec in SPECS
        .iter()
        .copied()
        .chain(fixtures.iter().map(String::as_str))
    {
        let dir = tmp(&format!("py-{}", spec.replace('/', "-")));
        let pkg = dir.join("pkg");
        export(spec, &pkg);
        for file in ["model.py", "data.py", "train.py"] {
            let ok = Command::new(&python)
                .args(["-m", "py_compile"])
                .arg(pkg.join(file))
                .status()
                .unwrap();
            assert!(ok.success(), "{spec}/{file} does not compile");
        }
        let out = Command::new(&python)
            .arg(root().join("tests/export_pytorch/forward_check.py"))
            .arg(&pkg)
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run = modelc()
            .args(["run", &spec_path(spec), "--no-preprocess", "--weights"])
            .arg(dir.join("w.safetensors"))
            .arg("--input")
            .arg(dir.join("x.npy"))
            .arg("-o")
            .arg(dir.join("y_modelc.npy"))
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let read = |name: &str| -> Vec<f32> {
            let b = std::fs::read(dir.join(name)).unwrap();
            let header = usize::from(u16::from_le_bytes([b[8], b[9]])) + 10;
            b[header..]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        let (a, b) = (read("y_torch.npy"), read("y_modelc.npy"));
        assert_eq!(a.len(), b.len(), "{spec}");
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        eprintln!(
            "{spec}: max |torch - modelc| = {worst:e} over {} outputs",
            a.len()
        );
        assert!(worst < 1e-4, "{spec}: {worst}");
    }
}

fn python_output(python: &std::ffi::OsStr, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(python)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn training_steps_give_modelc_weights_when_python_has_torch() {
    let Some(python) = std::env::var_os("MODELC_TEST_PYTHON") else {
        eprintln!(
            "skipped: MODELC_TEST_PYTHON is not set (a Python with torch, numpy, safetensors)"
        );
        return;
    };
    let steps = root().join("tests/export_pytorch/steps");
    for spec in ["reg", "rnn", "cnn", "attn", "img", "mask"] {
        let text = std::fs::read_to_string(steps.join(format!("{spec}.model.in"))).unwrap();
        for opt in [
            "sgd(lr: 0.1, momentum: 0.9)",
            "adam(lr: 0.01)",
            "rmsprop(lr: 0.01)",
        ] {
            let dir = tmp(&format!("step-{spec}-{}", &opt[..3]));
            let model = dir.join("s.model");
            std::fs::write(&model, text.replace("OPT", opt)).unwrap();
            let pkg = dir.join("pkg");
            let out = modelc()
                .args(["export", "--to", "pytorch", "-o"])
                .arg(&pkg)
                .arg(&model)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let w0 = dir.join("w0.safetensors");
            python_output(
                &python,
                &[
                    root()
                        .join("tests/export_pytorch/init_weights.py")
                        .as_os_str(),
                    pkg.as_os_str(),
                    w0.as_os_str(),
                ],
            );
            let out = modelc()
                .args(["train", "--epochs", "2", "--init-weights"])
                .arg(&w0)
                .arg("--out")
                .arg(dir.join("m"))
                .arg(&model)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            python_output(
                &python,
                &[
                    pkg.join("train.py").as_os_str(),
                    "--epochs".as_ref(),
                    "2".as_ref(),
                    "--init".as_ref(),
                    w0.as_os_str(),
                    "--out".as_ref(),
                    dir.join("t").as_os_str(),
                ],
            );
            let worst: f64 = python_output(
                &python,
                &[
                    root()
                        .join("tests/export_pytorch/compare_weights.py")
                        .as_os_str(),
                    dir.join("m/weights.safetensors").as_os_str(),
                    dir.join("t/weights.safetensors").as_os_str(),
                ],
            )
            .trim()
            .parse()
            .unwrap();
            eprintln!("{spec} {opt}: two steps, max |torch - modelc| = {worst:e}");
            assert!(worst < 1e-4, "{spec} {opt}: {worst}");
        }
    }
}

/// The last row's value of `column` in a metrics.csv.
fn last_value(csv: &Path, column: &str) -> f64 {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == column).unwrap();
    let last = lines.last().unwrap();
    last.split(',').nth(at).unwrap().parse().unwrap()
}

#[test]
fn torchrun_of_the_seed_cnn_reaches_modelc_accuracy_when_python_has_torch() {
    let Some(python) = std::env::var_os("MODELC_TEST_PYTHON") else {
        eprintln!(
            "skipped: MODELC_TEST_PYTHON is not set (a Python with torch, numpy, safetensors)"
        );
        return;
    };
    let dir = tmp("torchrun");
    let pkg = dir.join("pkg");
    export("seed_cnn", &pkg);
    let w0 = dir.join("w0.safetensors");
    python_output(
        &python,
        &[
            root()
                .join("tests/export_pytorch/init_weights.py")
                .as_os_str(),
            pkg.as_os_str(),
            w0.as_os_str(),
        ],
    );
    let out = modelc()
        .args([
            "train",
            "specs/seed_cnn.model",
            "--epochs",
            "2",
            "--init-weights",
        ])
        .arg(&w0)
        .arg("--out")
        .arg(dir.join("m"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = python_output(
        &python,
        &[
            "-m".as_ref(),
            "torch.distributed.run".as_ref(),
            "--nproc_per_node=2".as_ref(),
            pkg.join("train.py").as_os_str(),
            "--epochs".as_ref(),
            "2".as_ref(),
            "--init".as_ref(),
            w0.as_os_str(),
            "--out".as_ref(),
            dir.join("t").as_os_str(),
        ],
    );
    eprintln!("{log}");
    let modelc_acc = last_value(&dir.join("m/metrics.csv"), "val_accuracy");
    let torch_acc = last_value(&dir.join("t/metrics.csv"), "val_accuracy");
    eprintln!(
        "seed_cnn, 2 epochs: val_accuracy modelc {modelc_acc:.4}, torchrun x2 {torch_acc:.4}"
    );
    assert!(
        (modelc_acc - torch_acc).abs() <= 0.02,
        "{modelc_acc} vs {torch_acc}"
    );
    // the weights come back to modelc as they are
    let run = modelc()
        .args(["eval", "specs/seed_cnn.model", "--weights"])
        .arg(dir.join("t/weights.safetensors"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Every row's `column` values of a metrics.csv, as written.
fn column(csv: &Path, column: &str) -> Vec<String> {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == column).unwrap();
    lines
        .map(|l| l.split(',').nth(at).unwrap().to_string())
        .collect()
}

/// modelc's stratified split of the classes fixture's digits, from its own `split_rows`.
fn modelc_split_of_the_digits() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("data/digits.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "target").unwrap();
    let labels: Vec<i64> = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').nth(at).unwrap().parse::<f64>().unwrap() as i64)
        .collect();
    let split = modelc::data::spec::Split {
        validation: 0.2,
        test: 0.1,
        stratify: true,
        seed: 3,
        span: modelc::diag::Span::default(),
    };
    let rows = modelc::data::split::split_rows(labels.len(), Some(&split), false, Some(&labels));
    serde_json::json!({"train": rows.train, "validation": rows.validation, "test": rows.test})
}

#[test]
fn the_train_block_features_match_modelc_when_python_has_torch() {
    let Some(python) = std::env::var_os("MODELC_TEST_PYTHON") else {
        eprintln!(
            "skipped: MODELC_TEST_PYTHON is not set (a Python with torch, numpy, safetensors)"
        );
        return;
    };
    let spec = "tests/export_pytorch/fixtures/classes.model";
    let dir = tmp("classes-run");
    let pkg = dir.join("pkg");
    export("fixtures/classes", &pkg);
    // the stratified split's rows: data.py's are modelc's
    let rows = python_output(
        &python,
        &[
            "-c".as_ref(),
            "import json, sys; sys.path.insert(0, sys.argv[1]); import data; \
             s = data.load_splits(); print(json.dumps({k: [int(r) for r in v.rows] for k, v in s.items()}))"
                .as_ref(),
            pkg.as_os_str(),
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(rows.trim()).unwrap();
    assert_eq!(rows, modelc_split_of_the_digits());
    let w0 = dir.join("w0.safetensors");
    python_output(
        &python,
        &[
            root()
                .join("tests/export_pytorch/init_weights.py")
                .as_os_str(),
            pkg.as_os_str(),
            w0.as_os_str(),
        ],
    );
    // metrics of fixed weights on fixed data: train.py --evaluate against modelc eval
    for split in ["validation", "test"] {
        let out = modelc()
            .args([
                "eval",
                spec,
                "--split",
                split,
                "--format",
                "json",
                "--weights",
            ])
            .arg(&w0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got = python_output(
            &python,
            &[
                pkg.join("train.py").as_os_str(),
                "--init".as_ref(),
                w0.as_os_str(),
                "--evaluate".as_ref(),
                split.as_ref(),
            ],
        );
        let got: serde_json::Value = serde_json::from_str(got.trim()).unwrap();
        for m in [
            "loss",
            "accuracy",
            "precision",
            "recall",
            "f1",
            "auc",
            "top_k_accuracy",
        ] {
            let (a, b) = (want[m].as_f64().unwrap(), got[m].as_f64().unwrap());
            eprintln!("{split} {m}: modelc {a}, train.py {b}");
            assert!(
                (a - b).abs() <= 1e-5,
                "{split} {m}: modelc {a}, train.py {b}"
            );
        }
    }
    // training: the same lr every epoch (warmup |> cosine |> reduce_on_plateau), the same
    // class-weighted losses and metrics; train.py runs from another folder, with the default
    // data root
    let out = modelc()
        .args(["train", spec, "--init-weights"])
        .arg(&w0)
        .arg("--out")
        .arg(dir.join("m"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&python)
        .arg(pkg.join("train.py"))
        .arg("--init")
        .arg(&w0)
        .arg("--out")
        .arg(dir.join("t"))
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (m, t) = (dir.join("m/metrics.csv"), dir.join("t/metrics.csv"));
    let lr = column(&m, "lr");
    assert_eq!(lr, column(&t, "lr"));
    // the plateau rule lowered the rate at least once after the chain's fixed links
    assert!(lr.last().unwrap().parse::<f64>().unwrap() < 0.1, "{lr:?}");
    for c in ["loss", "val_loss", "f1", "val_auc", "val_top_k_accuracy"] {
        for (a, b) in column(&m, c).iter().zip(column(&t, c)) {
            let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!((a - b).abs() <= 1e-4, "{c}: modelc {a}, train.py {b}");
        }
    }
}
