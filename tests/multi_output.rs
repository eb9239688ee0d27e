//! Models with several outputs trained from specs (issue 16): a csv `label:` list gives one label
//! set per output. Checked against independent references: `eval`'s total and per-output losses
//! and accuracies recomputed by hand from `run`'s outputs and the csv's label columns; the
//! per-output columns of `metrics.csv` (names as Keras logs them, `loss` the weighted sum);
//! early stopping on a per-output value restores that value's best epoch; `--resume` continues
//! with the same columns and the same numbers as an uninterrupted run; split and shuffle keep
//! each row's label sets together.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp,
    clippy::cast_precision_loss
)]

use modelc::data::loader::{load_dataset, Dataset};
use modelc::data::samples::{Features, Labels, Samples};
use std::path::{Path, PathBuf};

mod common;
use common::{eval_train_json, modelc, ok, s};

/// The first `n` rows of the shipped two-target digits: 64 pixels, the digit, its parity.
fn digits(n: usize) -> Vec<(Vec<f64>, usize, f64)> {
    let text = std::fs::read_to_string("data/digits_two_targets.csv").unwrap();
    text.lines()
        .skip(1)
        .take(n)
        .map(|l| {
            let cells: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
            assert_eq!(cells.len(), 66);
            (cells[..64].to_vec(), cells[64] as usize, cells[65])
        })
        .collect()
}

/// A spec in `dir` over the first `n` rows (copied to `rows.csv`): two heads on one trunk,
/// `loss_weights digit: 1.0, parity: 0.5`; `extra` goes into the data block.
fn write_spec(dir: &Path, n: usize, extra: &str, train_extra: &str) -> PathBuf {
    let text = std::fs::read_to_string("data/digits_two_targets.csv").unwrap();
    let rows: Vec<&str> = text.lines().take(n + 1).collect();
    std::fs::write(dir.join("rows.csv"), rows.join("\n") + "\n").unwrap();
    let spec = dir.join("two.model");
    std::fs::write(
        &spec,
        format!(
            "model TwoHeads(pixels: f32[N, 64]) -> (digit: f32[N, 10], parity: f32[N, 1]) {{\n    \
             let h = pixels |> dense(16, activation: relu)\n    \
             (h |> dense(10, activation: softmax), h |> dense(1, activation: sigmoid))\n}}\n\n\
             data Rows {{\n    source csv(\"rows.csv\", label: [\"target\", \"parity\"], classes: [10, 2], features: 64)\n    \
             map    scale(1/16)\n{extra}    batch  32\n}}\n\n\
             train TwoHeads on Rows {{\n    loss         digit: sparse_categorical_crossentropy, parity: binary_crossentropy\n    \
             loss_weights digit: 1.0, parity: 0.5\n    metrics      [accuracy]\n    optimizer    adam(lr: 0.01)\n    \
             epochs       3\n    seed         1\n{train_extra}}}\n"
        ),
    )
    .unwrap();
    spec
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * b.abs().max(1.0),
        "{what}: {a} vs {b}"
    );
}

/// `metrics.csv` as its header and rows of numbers.
fn metrics_csv(run: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap()
}

#[test]
fn eval_totals_and_per_output_figures_equal_those_recomputed_from_run_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 160;
    let spec = write_spec(d, n, "", "");
    let run_dir = d.join("run");
    ok(&modelc(&["train", s(&spec), "--out", s(&run_dir)]));
    let weights = run_dir.join("weights.safetensors");
    let eval = eval_train_json(&spec, &weights);
    assert_eq!(eval["samples"], n, "{eval}");
    // The raw pixels with their header: `run` applies the plan's `scale(1/16)`.
    let rows = digits(n);
    let mut x = (0..64)
        .map(|i| format!("p{i}"))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for (pixels, _, _) in &rows {
        let cells: Vec<String> = pixels.iter().map(ToString::to_string).collect();
        x.push_str(&(cells.join(",") + "\n"));
    }
    std::fs::write(d.join("x.csv"), x).unwrap();
    let run: serde_json::Value = serde_json::from_str(&ok(&modelc(&[
        "run",
        s(&run_dir.join("plan.ron")),
        "--weights",
        s(&weights),
        "--input",
        s(&d.join("x.csv")),
        "--format",
        "json",
    ])))
    .unwrap();
    let outputs = run["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["name"], "digit");
    assert_eq!(outputs[1]["name"], "parity");
    let digit = outputs[0]["values"].as_array().unwrap();
    let parity = outputs[1]["values"].as_array().unwrap();
    assert_eq!((digit.len(), parity.len()), (n, n));
    let (mut ce, mut bce, mut digit_hits, mut parity_hits) = (0.0, 0.0, 0.0, 0.0);
    for (k, (_, y, t)) in rows.iter().enumerate() {
        let p: Vec<f64> = digit[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        ce -= p[*y].ln();
        let best = (0..10).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        digit_hits += f64::from(u8::from(best == *y));
        let q = parity[k][0].as_f64().unwrap();
        bce -= t * q.ln() + (1.0 - t) * (1.0 - q).ln();
        parity_hits += f64::from(u8::from((q > 0.5) == (*t == 1.0)));
    }
    let nf = n as f64;
    let (ce, bce) = (ce / nf, bce / nf);
    let get = |k: &str| eval[k].as_f64().unwrap();
    close(get("digit_loss"), ce, 1e-4, "digit_loss");
    close(get("parity_loss"), bce, 1e-4, "parity_loss");
    close(
        get("digit_accuracy"),
        digit_hits / nf,
        1e-6,
        "digit_accuracy",
    );
    close(
        get("parity_accuracy"),
        parity_hits / nf,
        1e-6,
        "parity_accuracy",
    );
    close(get("loss"), ce + 0.5 * bce, 1e-4, "the weighted total");
    close(
        get("loss"),
        get("digit_loss") + 0.5 * get("parity_loss"),
        1e-12,
        "total of the reported losses",
    );
    // The human form names the same figures.
    let human = ok(&modelc(&[
        "eval",
        s(&spec),
        "--weights",
        s(&weights),
        "--split",
        "train",
    ]));
    for name in [
        "digit_loss",
        "parity_loss",
        "digit_accuracy",
        "parity_accuracy",
    ] {
        assert!(human.contains(&format!(" - {name} ")), "{human}");
    }

    // metrics.csv: the Keras column names, finite values, `loss` the weighted sum of the
    // per-output epoch means (each a mean of the same batches' figures).
    let (header, table) = metrics_csv(&run_dir);
    assert_eq!(
        header[..6],
        [
            "epoch",
            "loss",
            "digit_loss",
            "parity_loss",
            "digit_accuracy",
            "parity_accuracy"
        ]
    );
    assert_eq!(table.len(), 3);
    for row in &table {
        assert!(row.iter().all(|v| v.is_finite()), "{row:?}");
        close(row[1], row[2] + 0.5 * row[3], 1e-5, "loss column");
    }
}

#[test]
fn early_stopping_on_a_per_output_value_restores_its_best_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("run");
    let o = modelc(&[
        "train",
        "tests/fixtures/train/two_outputs.model",
        "--train",
        "Stopping",
        "--out",
        s(&out),
    ]);
    ok(&o);
    let (header, table) = metrics_csv(&out);
    let at = column(&header, "val_parity_loss");
    assert!(
        header.contains(&"val_digit_accuracy".to_string()),
        "{header:?}"
    );
    let (best_row, best) = table
        .iter()
        .enumerate()
        .map(|(i, r)| (i, r[at]))
        .fold((0, f64::INFINITY), |b, x| if x.1 < b.1 { x } else { b });
    // Stopped after its best epoch, so the weights it ends with had to be restored.
    assert!(best_row + 1 < table.len(), "{table:?}");
    let stderr =
        String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    assert!(
        stderr.contains(&format!("best epoch {} (val_parity_loss", best_row + 1)),
        "{stderr}"
    );
    // The weights written are the best epoch's: measured again, they give its value.
    let eval: serde_json::Value = serde_json::from_str(&ok(&modelc(&[
        "eval",
        "tests/fixtures/train/two_outputs.model",
        "--train",
        "Stopping",
        "--weights",
        s(&out.join("weights.safetensors")),
        "--split",
        "validation",
        "--format",
        "json",
    ])))
    .unwrap();
    close(
        eval["parity_loss"].as_f64().unwrap(),
        best,
        1e-5,
        "restored val_parity_loss",
    );
}

#[test]
fn resume_continues_with_the_same_columns_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = "tests/fixtures/train/two_outputs.model";
    let whole = d.join("whole");
    let train = |out: &Path, more: &[&str]| {
        let mut args = vec!["train", spec, "--train", "TwoHeads", "--out", s(out)];
        args.extend_from_slice(more);
        ok(&modelc(&args));
    };
    train(&whole, &[]);
    let parts = d.join("parts");
    train(&parts, &["--epochs", "2"]);
    train(&parts, &["--resume"]);
    let (h1, t1) = metrics_csv(&whole);
    let (h2, t2) = metrics_csv(&parts);
    assert_eq!(h1, h2);
    assert_eq!(t1.len(), 4);
    assert_eq!(t2.len(), 4);
    let speed = column(&h1, "samples_per_sec");
    for (a, b) in t1.iter().zip(&t2) {
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            if k != speed {
                assert_eq!(x, y, "column {}", h1[k]);
            }
        }
    }
}

fn load(spec: &Path) -> Dataset {
    let text = std::fs::read_to_string(spec).unwrap();
    let file = modelc::diag::FileId::default();
    let parsed = modelc::syntax::parse(file, &text, &modelc::syntax::Limits::default());
    let checked = modelc::check::check_file(file, &parsed.file);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    load_dataset(&checked.pipelines[0], spec.parent().unwrap()).unwrap()
}

/// Each sample's row in the csv (found by its pixels), after checking that both label sets are
/// that row's.
fn rows_of(s: &Features, labels: &Labels, data: &[(Vec<f64>, usize, f64)]) -> Vec<usize> {
    let Features::F32(x) = s else {
        panic!("f32 features")
    };
    let Labels::Outputs(sets) = labels else {
        panic!("a label set per output, found {labels:?}")
    };
    let [Labels::Class(digits), Labels::Class(parities)] = sets.as_slice() else {
        panic!("two class label sets")
    };
    x.outer_iter()
        .enumerate()
        .map(|(k, row)| {
            let pixels: Vec<f64> = row.iter().map(|&v| (f64::from(v) * 16.0).round()).collect();
            let i = data.iter().position(|(p, _, _)| *p == pixels).unwrap();
            assert_eq!(digits[k] as usize, data[i].1, "digit of row {i}");
            assert_eq!(parities[k] as f64, data[i].2, "parity of row {i}");
            i
        })
        .collect()
}

#[test]
fn split_shuffle_and_batches_keep_each_rows_label_sets_together() {
    let dir = tempfile::tempdir().unwrap();
    let n = 120;
    let spec = write_spec(
        dir.path(),
        n,
        "    split  validation: 0.25, seed: 3, stratify: true\n    shuffle seed: 5\n",
        "",
    );
    let data = digits(n);
    let ds = load(&spec);
    let check = |s: &Samples| rows_of(&s.features, &s.labels, &data);
    let mut seen: Vec<usize> = check(&ds.train);
    seen.extend(check(&ds.validation));
    // Rows with the same pixels would be ambiguous: the first 120 digits have none.
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), n);
    // The batches of a shuffled epoch keep them together too.
    let mut batched = 0;
    for batch in ds.train_loader().epoch(1) {
        let b = batch.unwrap();
        batched += rows_of(&b.features, &b.labels, &data).len();
    }
    assert_eq!(batched, ds.train.features.len());
}

#[test]
fn an_experiment_selects_by_a_per_output_metric() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = write_spec(d, 200, "    split  validation: 0.25, seed: 7\n", "");
    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push_str(
        "\nexperiment Heads {\n    base   TwoHeads\n    \
         vary   optimizer: [sgd(lr: 0.01), adam(lr: 0.01)]\n    \
         select max val_digit_accuracy\n}\n",
    );
    std::fs::write(&spec, text).unwrap();
    let out = d.join("exp");
    ok(&modelc(&["experiment", s(&spec), "--out", s(&out)]));
    // Each trial's score, read from its own metrics.csv: the best val_digit_accuracy over its
    // epochs (not the total loss, not the parity head's accuracy).
    let mut scores = Vec::new();
    for entry in std::fs::read_dir(out.join("trials")).unwrap() {
        let trial = entry.unwrap().path();
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(trial.join("trial.json")).unwrap())
                .unwrap();
        let (header, rows) = metrics_csv(&trial);
        let c = column(&header, "val_digit_accuracy");
        let best = rows.iter().map(|r| r[c]).fold(f64::NEG_INFINITY, f64::max);
        let configuration = info["configuration"].as_str().unwrap().to_string();
        scores.push((configuration, best));
    }
    assert_eq!(scores.len(), 2, "{scores:?}");
    assert_ne!(
        scores[0].1, scores[1].1,
        "the trials must differ: {scores:?}"
    );
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = summary.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(first[at("rank")], "1", "{summary}");
    assert_eq!(first[at("configuration")], scores[0].0, "{summary}");
    let mean: f64 = first[at("mean_best_val_digit_accuracy")].parse().unwrap();
    close(mean, scores[0].1, 1e-6, "the winner's score");
}

#[test]
fn data_stats_count_each_label_set_and_name_its_column() {
    let rows = digits(usize::MAX);
    let o = modelc(&[
        "data",
        "stats",
        "specs/digits_two_outputs.model",
        "--format",
        "json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    // Counted over both splits, each label set's classes are the csv column's counts.
    let counts = |set: usize| -> Vec<u64> {
        let one = |split: &str| -> Vec<u64> {
            j[split]["label_sets"][set]["class_counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .collect()
        };
        one("train")
            .iter()
            .zip(one("validation"))
            .map(|(a, b)| a + b)
            .collect()
    };
    let mut digit = vec![0u64; 10];
    let mut parity = vec![0u64; 2];
    for (_, d, p) in &rows {
        digit[*d] += 1;
        parity[*p as usize] += 1;
    }
    assert_eq!(counts(0), digit);
    assert_eq!(counts(1), parity);
    let human = ok(&modelc(&[
        "data",
        "stats",
        "specs/digits_two_outputs.model",
    ]));
    assert!(human.contains("labels `target` (output 1):"), "{human}");
    assert!(human.contains("labels `parity` (output 2):"), "{human}");
}
