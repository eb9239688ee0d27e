//! Multi-input training (issue 16): a pipeline's `inputs` line cuts each csv row into named
//! feature groups, one per model input. Checked against references built by hand: the groups
//! the trainer gets equal the csv's columns sliced and preprocessed by hand; every group and the
//! label of a sample come from one csv row through split, shuffle and batches; `eval`'s loss
//! equals the loss recomputed from `run`'s outputs on the raw columns of each input; the shipped
//! example trains to a sensible accuracy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp,
    clippy::cast_precision_loss
)]

use modelc::data::loader::{load_dataset, Dataset};
use modelc::data::samples::{Features, Labels, Samples};
use std::fmt::Write as _;
use std::path::Path;

mod common;
use common::{eval_train_json, modelc, ok, s};

/// Row `i` of the test csv: `id, a, b, c, y` with `id = i`, and values no two rows share.
fn row(i: usize) -> [f64; 5] {
    let t = i as f64;
    [
        t,
        (t * 0.37).sin() * 3.0 + 0.25,
        (t * 0.11).cos() * 2.0,
        t / 8.0 - 1.5 + (t * 1.3).sin(),
        ((t * 0.5).sin() + t / 40.0) * 2.0,
    ]
}

/// The csv text of rows `0..n` (values printed as f32, as the reader parses them).
fn csv(n: usize) -> String {
    let mut text = String::from("id,a,b,c,y\n");
    for i in 0..n {
        let cells: Vec<String> = row(i).iter().map(|&v| format!("{}", v as f32)).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    text
}

/// The value of row `i`, column `j`, as the csv reader gives it.
fn cell(i: usize, j: usize) -> f64 {
    f64::from(row(i)[j] as f32)
}

const MODEL: &str = "model Two(left: f32[N, 2], right: f32[N, 2]) -> f32[N, 1] {\n    \
                     concat(left, right) |> dense(4, activation: tanh) |> dense(1)\n}\n";

/// A spec over `rows.csv` in `dir` with this data block body (after the source line).
fn write_spec(dir: &Path, n: usize, body: &str, epochs: usize) -> std::path::PathBuf {
    std::fs::write(dir.join("rows.csv"), csv(n)).unwrap();
    let spec = dir.join("two.model");
    std::fs::write(
        &spec,
        format!(
            "{MODEL}\ndata Rows {{\n    source csv(\"rows.csv\", label: \"y\", features: [\"id\", \"a\", \"b\", \"c\"], task: regression)\n\
             {body}}}\n\n\
             train Two on Rows {{\n    loss      mse\n    optimizer adam(lr: 0.01)\n    \
             epochs    {epochs}\n    metrics   [mae]\n    seed      1\n}}\n"
        ),
    )
    .unwrap();
    spec
}

fn load(spec: &Path) -> Dataset {
    let text = std::fs::read_to_string(spec).unwrap();
    let file = modelc::diag::FileId::default();
    let parsed = modelc::syntax::parse(file, &text, &modelc::syntax::Limits::default());
    let checked = modelc::check::check_file(file, &parsed.file);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    load_dataset(&checked.pipelines[0], spec.parent().unwrap()).unwrap()
}

/// The two groups of a data set, each as rows of f64.
fn groups(s: &Samples) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let Features::Groups(g) = &s.features else {
        panic!("expected groups, found {:?}", s.features.shape())
    };
    assert_eq!(g.len(), 2);
    assert_eq!((g[0].name.as_str(), g[1].name.as_str()), ("left", "right"));
    let rows = |f: &Features| -> Vec<Vec<f64>> {
        let Features::F32(a) = f else { panic!("f32") };
        a.outer_iter()
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect()
    };
    (rows(&g[0].features), rows(&g[1].features))
}

fn labels(s: &Samples) -> Vec<f64> {
    let Labels::Values(v) = &s.labels else {
        panic!("value labels")
    };
    v.iter().map(|&x| f64::from(x)).collect()
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn the_trainer_gets_the_csv_columns_sliced_and_preprocessed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let n = 12;
    let spec = write_spec(
        dir.path(),
        n,
        "    inputs left: [\"id\", \"b\"], right: [\"c\", \"a\"]\n    \
         map    left: scale(0.5, offset: 1)\n    map    right: standardize()\n    batch  4\n",
        1,
    );
    let ds = load(&spec);
    assert!(ds.validation.features.is_empty());
    let (left, right) = groups(&ds.train);
    assert_eq!((left.len(), right.len()), (n, n));
    // `standardize` by hand: population mean and standard deviation of columns c and a.
    let stats = |j: usize| {
        let m = (0..n).map(|i| cell(i, j)).sum::<f64>() / n as f64;
        let v = (0..n).map(|i| (cell(i, j) - m).powi(2)).sum::<f64>() / n as f64;
        (m, v.sqrt())
    };
    let ((mc, sc), (ma, sa)) = (stats(3), stats(1));
    for i in 0..n {
        close(left[i][0], cell(i, 0) * 0.5 + 1.0, "left id");
        close(left[i][1], cell(i, 2) * 0.5 + 1.0, "left b");
        close(right[i][0], (cell(i, 3) - mc) / sc, "right c");
        close(right[i][1], (cell(i, 1) - ma) / sa, "right a");
    }
    assert_eq!(
        labels(&ds.train),
        (0..n).map(|i| cell(i, 4)).collect::<Vec<_>>()
    );
    // The fitted numbers travel in the group's step, for the plan.
    let fitted = format!("{:?}", ds.spec.inputs[1].preprocess[0].op);
    assert!(fitted.contains(&format!("{:?}", mc as f32)), "{fitted}");
}

/// Checks that sample `k` of `left`, `right` and `y` comes from one csv row (found by its id),
/// and returns that row.
fn row_of(left: &[f64], right: &[f64], y: f64) -> usize {
    let id = ((left[0] - 1.0) / 0.5).round();
    assert!(id >= 0.0, "{left:?}");
    let i = id as usize;
    close(left[1], cell(i, 2) * 0.5 + 1.0, "left b of the same row");
    close(right[0], cell(i, 3), "right c of the same row");
    close(right[1], cell(i, 1), "right a of the same row");
    close(y, cell(i, 4), "label of the same row");
    i
}

#[test]
fn split_shuffle_and_batches_keep_each_rows_groups_and_label_together() {
    let dir = tempfile::tempdir().unwrap();
    let n = 40;
    let spec = write_spec(
        dir.path(),
        n,
        "    inputs left: [\"id\", \"b\"], right: [\"c\", \"a\"]\n    \
         map    left: scale(0.5, offset: 1)\n    split  validation: 0.25, seed: 3\n    \
         shuffle seed: 5\n    batch  6\n",
        1,
    );
    let ds = load(&spec);
    let mut seen = Vec::new();
    for split in [&ds.train, &ds.validation] {
        let (left, right) = groups(split);
        let y = labels(split);
        for k in 0..y.len() {
            seen.push(row_of(&left[k], &right[k], y[k]));
        }
    }
    assert_eq!(ds.validation.features.len(), 10);
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "every row once");
    // Shuffled batches: each batch's groups and labels stay row-aligned, and an epoch visits
    // every training row once, in an order other than the stored one.
    let loader = ds.train_loader();
    for epoch in 0..2 {
        let mut ids = Vec::new();
        for batch in loader.epoch(epoch) {
            let batch = batch.unwrap();
            let s = Samples {
                features: batch.features,
                labels: batch.labels,
            };
            let (left, right) = groups(&s);
            let y = labels(&s);
            for k in 0..y.len() {
                ids.push(row_of(&left[k], &right[k], y[k]));
            }
        }
        let stored: Vec<usize> = groups(&ds.train)
            .0
            .iter()
            .map(|l| ((l[0] - 1.0) / 0.5).round() as usize)
            .collect();
        assert_ne!(ids, stored, "epoch {epoch} is shuffled");
        let mut a = ids.clone();
        let mut b = stored.clone();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "epoch {epoch} visits every training row once");
    }
}

#[test]
fn eval_loss_equals_the_loss_of_run_outputs_on_each_inputs_raw_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 24;
    let spec = write_spec(
        d,
        n,
        "    inputs left: [\"id\", \"b\"], right: [\"c\", \"a\"]\n    \
         map    left: scale(0.1)\n    map    right: standardize()\n    shuffle seed: 2\n    batch  8\n",
        6,
    );
    let run_dir = d.join("run");
    ok(&modelc(&[
        "train",
        s(&spec),
        "--format",
        "json",
        "--out",
        s(&run_dir),
    ]));
    let weights = run_dir.join("weights.safetensors");
    let eval = eval_train_json(&spec, &weights);
    assert_eq!(eval["samples"], n, "{eval}");
    // One csv per model input, holding that group's raw columns; `run` applies each group's
    // fitted steps from the plan.
    let mut left = String::new();
    let mut right = String::new();
    for i in 0..n {
        writeln!(left, "{},{}", cell(i, 0), cell(i, 2)).unwrap();
        writeln!(right, "{},{}", cell(i, 3), cell(i, 1)).unwrap();
    }
    std::fs::write(d.join("left.csv"), left).unwrap();
    std::fs::write(d.join("right.csv"), right).unwrap();
    let run: serde_json::Value = serde_json::from_str(&ok(&modelc(&[
        "run",
        s(&run_dir.join("plan.ron")),
        "--weights",
        s(&weights),
        "--input",
        s(&d.join("left.csv")),
        "--input",
        s(&d.join("right.csv")),
        "--format",
        "json",
    ])))
    .unwrap();
    let out = run["outputs"][0]["values"].as_array().unwrap();
    assert_eq!(out.len(), n);
    let (mut se, mut ae) = (0.0f64, 0.0f64);
    for (i, y) in out.iter().enumerate() {
        let e = y[0].as_f64().unwrap() - cell(i, 4);
        se += e * e;
        ae += e.abs();
    }
    let (mse, mae) = (se / n as f64, ae / n as f64);
    let loss = eval["loss"].as_f64().unwrap();
    assert!(
        (loss - mse).abs() <= 1e-5 * mse.max(1e-3),
        "eval {loss} vs {mse}"
    );
    let mae_eval = eval["mae"].as_f64().unwrap();
    assert!(
        (mae_eval - mae).abs() <= 1e-5 * mae.max(1e-3),
        "eval {mae_eval} vs {mae}"
    );
    // Swapping the two files gives other outputs: each input got its own group's steps.
    let swapped = modelc(&[
        "run",
        s(&run_dir.join("plan.ron")),
        "--weights",
        s(&weights),
        "--input",
        s(&d.join("right.csv")),
        "--input",
        s(&d.join("left.csv")),
        "--format",
        "json",
    ]);
    let swapped: serde_json::Value = serde_json::from_str(&ok(&swapped)).unwrap();
    assert_ne!(swapped["outputs"][0]["values"], run["outputs"][0]["values"]);
}

#[test]
fn the_shipped_two_input_digits_spec_trains_to_a_sensible_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&modelc(&[
        "train",
        "specs/digits_two_inputs.model",
        "--epochs",
        "4",
        "--format",
        "json",
        "--out",
        s(dir.path()),
    ]));
    let last = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|l| l.get("epoch").is_some())
        .unwrap();
    let acc = last["val_accuracy"].as_f64().unwrap();
    assert!(acc > 0.85, "val_accuracy {acc} after 4 epochs");
    // The plan carries both groups and their steps, for `run`.
    let plan = std::fs::read_to_string(dir.path().join("plan.ron")).unwrap();
    assert!(plan.contains("input_groups"), "{plan}");
    assert!(
        plan.contains("\"top\"") && plan.contains("\"bottom\""),
        "{plan}"
    );
}

#[test]
fn pytorch_export_refuses_input_groups_with_e1201() {
    let dir = tempfile::tempdir().unwrap();
    let o = modelc(&[
        "--color",
        "never",
        "export",
        "specs/digits_two_inputs.model",
        "--to",
        "pytorch",
        "-o",
        s(&dir.path().join("pkg")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("error[E1201]"), "{e}");
    assert!(
        e.contains("inputs  top: 32"),
        "the inputs line is shown: {e}"
    );
}
