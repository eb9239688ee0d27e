//! `modelc train` and `modelc eval` end to end: convergence, outputs, JSON lines, determinism,
//! bit-for-bit resume, refusals and divergence.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp,
    clippy::needless_range_loop
)]

use std::path::Path;
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn modelc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

const TINY: &str = "tests/fixtures/train/tiny_digits.model";

/// Trains the tiny spec's `Tiny` block for `epochs` into `out`, with `extra` flags.
fn train_tiny(epochs: u32, out: &Path, extra: &[&str]) {
    let epochs = epochs.to_string();
    let mut args = vec![
        "train",
        TINY,
        "--train",
        "Tiny",
        "--epochs",
        &epochs,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&modelc(&args));
}

/// Reads the f32 tensors of a safetensors file.
fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let vals = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (n, v.shape().to_vec(), vals)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn linear_regression_converges_to_the_least_squares_solution() {
    let dir = tempfile::tempdir().unwrap();
    let o = modelc(&[
        "train",
        "specs/linear_regression.model",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    ok(&o);
    // The same data, loaded by the library, solved independently in f64 (normal equations).
    let text = std::fs::read_to_string(root().join("specs/linear_regression.model")).unwrap();
    let parsed = modelc::syntax::parse(
        modelc::diag::FileId::default(),
        &text,
        &modelc::syntax::Limits::default(),
    );
    let checked = modelc::check::check_file(modelc::diag::FileId::default(), &parsed.file);
    let ds =
        modelc::data::loader::load_dataset(&checked.pipelines[0], &root().join("specs")).unwrap();
    let modelc::data::samples::Features::F32(x) = &ds.train.features else {
        panic!()
    };
    let modelc::data::samples::Labels::Values(y) = &ds.train.labels else {
        panic!()
    };
    let (n, f) = (x.shape()[0], x.shape()[1]);
    let k = f + 1;
    let mut a = vec![vec![0f64; k + 1]; k];
    for i in 0..n {
        let row: Vec<f64> = (0..f).map(|j| f64::from(x[[i, j]])).chain([1.0]).collect();
        let t = f64::from(y.as_slice().unwrap()[i]);
        for r in 0..k {
            for c in 0..k {
                a[r][c] += row[r] * row[c];
            }
            a[r][k] += row[r] * t;
        }
    }
    for p in 0..k {
        let piv = (p..k)
            .max_by(|&i, &j| a[i][p].abs().total_cmp(&a[j][p].abs()))
            .unwrap();
        a.swap(p, piv);
        for r in 0..k {
            if r != p {
                let m = a[r][p] / a[p][p];
                for c in p..=k {
                    a[r][c] -= m * a[p][c];
                }
            }
        }
    }
    let solution: Vec<f64> = (0..k).map(|r| a[r][k] / a[r][r]).collect();
    let w = tensors(&dir.path().join("weights.safetensors"));
    let bias = &w.iter().find(|t| t.0 == "dense.bias").unwrap().2;
    let kernel = &w.iter().find(|t| t.0 == "dense.kernel").unwrap().2;
    for j in 0..f {
        assert!(
            (f64::from(kernel[j]) - solution[j]).abs() < 1e-3,
            "w[{j}] {} vs {}",
            kernel[j],
            solution[j]
        );
    }
    assert!(
        (f64::from(bias[0]) - solution[f]).abs() < 1e-3,
        "b {} vs {}",
        bias[0],
        solution[f]
    );
}

#[test]
fn train_writes_every_output_and_eval_agrees_with_the_last_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = modelc(&[
        "train", TINY, "--train", "Tiny", "--out", out, "--format", "json",
    ]);
    ok(&o);
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Three epoch records, then the run's summary.
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["end"], "completed", "{}", lines[3]);
    assert_eq!(lines[3]["epochs"], 3);
    assert_eq!(lines[3]["best"], serde_json::Value::Null);
    for key in [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "samples_per_sec",
    ] {
        assert!(lines[2].get(key).is_some(), "{key} missing in {}", lines[2]);
    }
    assert!(
        lines[2]["loss"].as_f64().unwrap() < lines[0]["loss"].as_f64().unwrap(),
        "the loss went down"
    );
    assert!(
        lines[2]["val_accuracy"].as_f64().unwrap() > 0.6,
        "{}",
        lines[2]
    );
    for f in [
        "weights.safetensors",
        "plan.ron",
        "metrics.csv",
        "curves.svg",
        "checkpoint.safetensors",
    ] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.starts_with("epoch,loss,accuracy,val_loss,val_accuracy,lr,samples_per_sec\n"));
    modelc::plan::ExecutionPlan::from_ron(
        &std::fs::read_to_string(dir.path().join("plan.ron")).unwrap(),
    )
    .unwrap();
    // eval on the validation split gives the last epoch's validation figures.
    let weights = dir.path().join("weights.safetensors");
    let o = modelc(&[
        "eval",
        TINY,
        "--train",
        "Tiny",
        "--weights",
        weights.to_str().unwrap(),
        "--format",
        "json",
    ]);
    ok(&o);
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["samples"], 359);
    assert!(
        (e["loss"].as_f64().unwrap() - lines[2]["val_loss"].as_f64().unwrap()).abs() < 1e-9,
        "{e} vs {}",
        lines[2]
    );
    assert!(
        (e["accuracy"].as_f64().unwrap() - lines[2]["val_accuracy"].as_f64().unwrap()).abs() < 1e-9
    );
}

#[test]
fn same_seed_same_weights_and_resume_is_bit_for_bit() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    train_tiny(2, a.path(), &[]);
    // One epoch, then resume for the second.
    train_tiny(1, b.path(), &[]);
    train_tiny(2, b.path(), &["--resume"]);
    let wa = tensors(&a.path().join("weights.safetensors"));
    let wb = tensors(&b.path().join("weights.safetensors"));
    assert_eq!(
        wa, wb,
        "resumed training differs from uninterrupted training"
    );
    let ma = std::fs::read_to_string(a.path().join("metrics.csv")).unwrap();
    let mb = std::fs::read_to_string(b.path().join("metrics.csv")).unwrap();
    let strip = |s: &str| {
        s.lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip(&ma),
        strip(&mb),
        "the loss curve differs (samples/s aside)"
    );
    // A second identical run gives identical weights.
    let c = tempfile::tempdir().unwrap();
    train_tiny(2, c.path(), &[]);
    assert_eq!(tensors(&c.path().join("weights.safetensors")), wa);
}

#[test]
fn a_checkpoint_from_another_spec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    ok(&modelc(&[
        "train", TINY, "--train", "Tiny", "--epochs", "1", "--out", out,
    ]));
    let other = dir.path().join("other.model");
    let text = std::fs::read_to_string(root().join(TINY))
        .unwrap()
        .replace("conv2d(8,", "conv2d(6,");
    std::fs::write(
        &other,
        text.replace(
            "../../../data/digits.csv",
            &root().join("data/digits.csv").display().to_string(),
        ),
    )
    .unwrap();
    let before = std::fs::read(dir.path().join("checkpoint.safetensors")).unwrap();
    let o = modelc(&[
        "train",
        other.to_str().unwrap(),
        "--train",
        "Tiny",
        "--resume",
        "--out",
        out,
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("error[E0808]"));
    assert_eq!(
        std::fs::read(dir.path().join("checkpoint.safetensors")).unwrap(),
        before,
        "checkpoint changed"
    );
}

#[test]
fn divergence_stops_with_the_step_and_layer() {
    let dir = tempfile::tempdir().unwrap();
    let o = modelc(&[
        "train",
        TINY,
        "--train",
        "Diverging",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("error[E0807]: training diverged"), "{e}");
    // Step 1 starts from fresh (finite) weights and finite data, so it is finite; its update
    // with lr 1e30 leaves every parameter about 1e30 in size. In step 2 the conv's outputs (a
    // sum of 9 inputs in [0, 1] times weights about 1e30) stay below f32's 3.4e38, pooling and
    // flattening copy them, and the dense layer multiplies such values by weights about 1e30:
    // the first non-finite value of step 2's forward pass is the output of `dense`.
    assert!(e.contains("training step 2:"), "{e}");
    assert!(
        e.contains("the first non-finite value of the forward pass is in the output of `dense`;"),
        "{e}"
    );
    for earlier in ["conv2d", "max_pool2d", "flatten", "dropout"] {
        assert!(
            !e.contains(&format!("`{earlier}`")),
            "{earlier} is named: {e}"
        );
    }
}

#[test]
fn several_train_blocks_need_a_choice() {
    let o = modelc(&["train", TINY]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("choose one with `--train NAME`: Tiny, Diverging"));
    let o = modelc(&["train", TINY, "--train", "Tinny"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean `Tiny`?"));
}

#[test]
fn run_applies_the_plans_fitted_preprocessing_to_raw_input() {
    let dir = tempfile::tempdir().unwrap();
    ok(&modelc(&[
        "train",
        TINY,
        "--train",
        "Tiny",
        "--epochs",
        "1",
        "--out",
        dir.path().to_str().unwrap(),
    ]));
    let plan = modelc::plan::ExecutionPlan::from_ron(
        &std::fs::read_to_string(dir.path().join("plan.ron")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        plan.preprocessing.as_ref().map(Vec::len),
        Some(2),
        "reshape and scale are in the plan"
    );
    // Three raw digits rows (64 pixel values 0..16), and the same preprocessed by hand.
    let csv = std::fs::read_to_string(root().join("data/digits.csv")).unwrap();
    let rows: Vec<Vec<f32>> = csv
        .lines()
        .skip(1)
        .take(3)
        .map(|l| l.split(',').take(64).map(|v| v.parse().unwrap()).collect())
        .collect();
    let raw: Vec<f32> = rows.concat();
    let by_hand: Vec<f32> = raw.iter().map(|v| v / 16.0).collect();
    let raw_path = dir.path().join("raw.npy");
    let ready_path = dir.path().join("ready.npy");
    modelc::data::npy::write_npy(&raw_path, &[3, 64], &raw).unwrap();
    modelc::data::npy::write_npy(&ready_path, &[3, 8, 8, 1], &by_hand).unwrap();
    let plan_path = dir.path().join("plan.ron");
    let weights = dir.path().join("weights.safetensors");
    let run = |input: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            plan_path.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
        ];
        args.extend(["--input", input.to_str().unwrap(), "--format", "json"]);
        args.extend(extra);
        let o = modelc(&args);
        ok(&o);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let a = run(&raw_path, &[]);
    let b = run(&ready_path, &["--no-preprocess"]);
    assert_eq!(
        a, b,
        "raw input through the plan's preprocessing differs from preprocessing by hand"
    );
}

/// Issue 16: training into a folder that holds an earlier run refuses (exit 2) and changes
/// nothing, unless `--resume` continues it or `--force` replaces it.
#[test]
fn an_earlier_run_is_not_overwritten_without_resume_or_force() {
    let dir = tempfile::tempdir().unwrap();
    train_tiny(1, dir.path(), &[]);
    let files = [
        "checkpoint.safetensors",
        "weights.safetensors",
        "metrics.csv",
    ];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(dir.path().join(f)).unwrap())
        .collect();
    let out = dir.path().to_str().unwrap();
    let again = modelc(&[
        "train", TINY, "--train", "Tiny", "--epochs", "2", "--out", out,
    ]);
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("holds an earlier run"), "{err}");
    assert!(err.contains("--resume") && err.contains("--force"), "{err}");
    for (f, bytes) in files.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(dir.path().join(f)).unwrap(),
            bytes,
            "{f} changed"
        );
    }
    // --force replaces the run: two epochs now.
    train_tiny(2, dir.path(), &["--force"]);
    let metrics = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
    // --resume and --force together are a usage error.
    let both = modelc(&[
        "train", TINY, "--train", "Tiny", "--out", out, "--resume", "--force",
    ]);
    assert_eq!(both.status.code(), Some(2));
    // An empty folder (made by hand, say) is fine.
    let empty = tempfile::tempdir().unwrap();
    train_tiny(1, empty.path(), &[]);
}

/// Issue 16: `--threads T` trains in a pool of T threads, the same numbers for the same T; the
/// final line names every file written.
#[test]
fn threads_flag_is_deterministic_and_the_final_lines_name_the_files() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train_tiny(1, a.path(), &["--threads", "1"]);
    let o = modelc(&[
        "train",
        TINY,
        "--train",
        "Tiny",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--out",
        b.path().to_str().unwrap(),
    ]);
    ok(&o);
    assert_eq!(
        tensors(&a.path().join("weights.safetensors")),
        tensors(&b.path().join("weights.safetensors"))
    );
    let err = String::from_utf8_lossy(&o.stderr);
    // the final lines: one `Wrote PATH` per file of the run
    for f in [
        "checkpoint.safetensors",
        "weights.safetensors",
        "plan.ron",
        "metrics.csv",
        "curves.svg",
    ] {
        let line = format!("Wrote {}", b.path().join(f).display());
        assert!(
            err.contains(&line),
            "`{line}` missing from the final lines: {err}"
        );
    }
    assert_eq!(
        modelc(&["train", TINY, "--threads", "0"]).status.code(),
        Some(2)
    );
}

/// Issue 22: a checkpoint records its thread count, and resuming under another count (which
/// would silently change the numbers) is refused with the count to use.
#[test]
fn resume_under_another_thread_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    train_tiny(1, dir.path(), &["--threads", "1"]);
    let out = dir.path().to_str().unwrap();
    let o = modelc(&[
        "train",
        TINY,
        "--train",
        "Tiny",
        "--epochs",
        "2",
        "--out",
        out,
        "--resume",
        "--threads",
        "2",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("made with 1 threads and this run has 2"),
        "{err}"
    );
    assert!(err.contains("--threads 1"), "{err}");
    train_tiny(2, dir.path(), &["--resume", "--threads", "1"]);
}

/// Issue 22: while one `modelc train` runs in a folder, a second one there is refused (exit 2);
/// the lock goes with the process, however it ends.
#[test]
fn a_second_training_in_the_same_folder_is_refused_while_the_first_runs() {
    /// Kills the long run however the test ends, so no orphan holds the test's output open.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let mut first = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_modelc"))
            .current_dir(root())
            .args([
                "train", TINY, "--train", "Tiny", "--epochs", "100000", "--out", &out,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The lock file appears as the first run takes the lock, before it starts training (and
    // goes when a run ends).
    let started = std::time::Instant::now();
    while !dir.path().join(".modelc.lock").exists() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the first run never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = modelc(&[
        "train", TINY, "--train", "Tiny", "--epochs", "1", "--out", &out, "--force",
    ]);
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first run ended before the second was tried"
    );
    drop(first);
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another `modelc train` is running"), "{err}");
    // Killed, the first run's lock is gone with it.
    train_tiny(1, dir.path(), &["--force"]);
    assert!(
        !dir.path().join(".modelc.lock").exists(),
        "a finished run leaves its lock file"
    );
}

/// Issue 15: the shipped causal 1-D CNN trains from the command line to the error of the LSTM
/// on the same series (`specs/series_lstm.model`: val_mae 0.215 after 30 epochs).
#[test]
fn sunspots_conv1d_trains_to_the_lstms_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = modelc(&[
        "train",
        "specs/sunspots_conv1d.model",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    ok(&o);
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 30);
    // epoch, loss, mae, val_loss, val_mae, ...
    let (first, last) = (&rows[0], &rows[29]);
    assert!(last[1] < first[1] / 10.0, "loss {} → {}", first[1], last[1]);
    assert!(last[4] < 0.26, "val_mae {}", last[4]);
}

const CLASSES: &str = "tests/fixtures/train/class_metrics.model";

/// Trains a block of the class-metrics fixture; its JSON lines.
fn train_json(block: &str, out: &Path, threads: &str) -> Vec<serde_json::Value> {
    let o = modelc(&[
        "train",
        CLASSES,
        "--train",
        block,
        "--out",
        out.to_str().unwrap(),
        "--threads",
        threads,
        "--format",
        "json",
    ]);
    ok(&o);
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn class_metrics_are_logged_deterministic_and_agree_with_evals_report() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let lines = train_json("Classes", one.path(), "1");
    let again = train_json("Classes", two.path(), "2");
    let names = ["precision", "recall", "f1", "auc", "top_k_accuracy"];
    for (a, b) in lines.iter().zip(&again).take(2) {
        for name in ["loss", "accuracy", "val_loss", "val_accuracy"]
            .into_iter()
            .chain(names)
            .chain(names.map(|n| format!("val_{n}").leak() as &str))
        {
            let (x, y) = (num(a, name), num(b, name));
            assert!(
                (0.0..=1.0).contains(&x) || name.contains("loss"),
                "{name} {x}"
            );
            assert_eq!(x.to_bits(), y.to_bits(), "{name}: 1 thread vs 2");
        }
        // top-3 hits include every top-1 hit
        assert!(num(a, "top_k_accuracy") >= num(a, "accuracy"));
        assert!(num(a, "val_top_k_accuracy") >= num(a, "val_accuracy"));
    }
    // early stopping on `val_f1` maximizes it (`mode: auto`): the best epoch has the highest
    let best_f1 = lines
        .iter()
        .take(2)
        .map(|l| num(l, "val_f1"))
        .fold(f64::MIN, f64::max);
    assert_eq!(
        lines[2]["best"]["value"].as_f64().unwrap(),
        best_f1,
        "{}",
        lines[2]
    );
    let csv = std::fs::read_to_string(one.path().join("metrics.csv")).unwrap();
    assert!(csv.starts_with(
        "epoch,loss,accuracy,precision,recall,f1,auc,top_k_accuracy,val_loss,val_accuracy,val_precision,"
    ), "{csv}");
    // eval's report counts the same split: its accuracy and macro figures are the metrics'
    let weights = one.path().join("weights.safetensors");
    let eval = |format: &str| {
        let o = modelc(&[
            "eval",
            CLASSES,
            "--train",
            "Classes",
            "--weights",
            weights.to_str().unwrap(),
            "--format",
            format,
        ]);
        ok(&o);
        String::from_utf8(o.stdout).unwrap()
    };
    let e: serde_json::Value = serde_json::from_str(&eval("json")).unwrap();
    // the run ends with the best epoch's weights (restore_best)
    let best = lines[2]["best"]["epoch"].as_u64().unwrap() as usize;
    let last = &lines[best - 1];
    let report = &e["report"];
    for (metric, figure) in [
        (num(&e, "accuracy"), num(report, "accuracy")),
        (num(&e, "precision"), num(&report["macro_avg"], "precision")),
        (num(&e, "recall"), num(&report["macro_avg"], "recall")),
        (num(&e, "f1"), num(&report["macro_avg"], "f1")),
        (num(&e, "auc"), num(last, "val_auc")),
        (num(&e, "precision"), num(last, "val_precision")),
    ] {
        assert!(
            (metric - figure).abs() < 1e-6,
            "{metric} vs {figure} in {e}"
        );
    }
    let matrix = report["confusion_matrix"].as_array().unwrap();
    assert_eq!(matrix.len(), 10);
    let total: u64 = matrix
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, e["samples"].as_u64().unwrap());
    for (c, row) in matrix.iter().enumerate() {
        let support: u64 = row
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .sum();
        assert_eq!(report["classes"][c]["support"].as_u64().unwrap(), support);
    }
    let text = eval("human");
    assert!(text.contains("confusion matrix (rows: true class, columns: predicted class)"));
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with("macro avg"))
            .count(),
        1
    );
}

#[test]
fn binary_class_metrics_and_class_weights_train() {
    let dir = tempfile::tempdir().unwrap();
    let lines = train_json("Logits", dir.path(), "1");
    for name in ["precision", "recall", "f1", "auc", "val_auc", "val_f1"] {
        let x = num(&lines[1], name);
        assert!((0.0..=1.0).contains(&x), "{name} {x}");
    }
    let weights = dir.path().join("weights.safetensors");
    let o = modelc(&[
        "eval",
        CLASSES,
        "--train",
        "Logits",
        "--weights",
        weights.to_str().unwrap(),
        "--format",
        "json",
    ]);
    ok(&o);
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["report"]["binary"], true);
    let m = &e["report"]["confusion_matrix"];
    let count = |t: usize, p: usize| m[t][p].as_u64().unwrap() as f64;
    let (tp, fp, fn_) = (count(1, 1), count(0, 1), count(1, 0));
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
    assert!((num(&e, "precision") - precision).abs() < 1e-6, "{e}");
    assert!((num(&e, "recall") - recall).abs() < 1e-6, "{e}");
    assert_eq!(e["samples"], 50);
}
