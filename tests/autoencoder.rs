//! `target inputs` end to end: an autoencoder trains on a pipeline without labels, and the
//! loss and metrics `modelc eval` reports equal a recomputation from `modelc run`'s outputs
//! of the trained weights and the inputs as the pipeline prepares them; the shipped example
//! trains and rebuilds the digits better than it started.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{eval_train_json, modelc, ok, s};

/// The JSON lines of `train --format json` that are epochs.
fn epochs(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l.get("epoch").is_some())
        .collect()
}

#[test]
fn eval_loss_of_an_autoencoder_equals_its_recomputation_from_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 24 rows of 4 columns, no label column.
    let rows: Vec<[f32; 4]> = (0..24)
        .map(|i| {
            let t = i as f32;
            [
                (t * 0.37).sin() * 3.0,
                (t * 0.11).cos() * 2.0,
                t / 8.0 - 1.5,
                ((t * 1.3).sin() + (t * 0.2).cos()) * 2.0,
            ]
        })
        .collect();
    let mut csv = String::from("a,b,c,d\n");
    for r in &rows {
        let cells: Vec<String> = r.iter().map(|v| format!("{v}")).collect();
        csv.push_str(&cells.join(","));
        csv.push('\n');
    }
    let data = d.join("rows.csv");
    std::fs::write(&data, &csv).unwrap();
    let spec = d.join("auto.model");
    std::fs::write(
        &spec,
        format!(
            "model Auto(x: f32[N, 4]) -> f32[N, 4] {{\n    dense(2, activation: tanh)\n    dense(4)\n}}\n\n\
             data Rows {{\n    source csv(\"{}\", features: 4)\n    map    scale(0.5)\n    \
             shuffle seed: 3\n    batch  8\n}}\n\n\
             train Auto on Rows {{\n    loss      mse\n    optimizer adam(lr: 0.05)\n    \
             epochs    8\n    metrics   [mae]\n    target    inputs\n}}\n",
            data.display()
        ),
    )
    .unwrap();
    let run_dir = d.join("run");
    let out = ok(&modelc(&[
        "train",
        s(&spec),
        "--format",
        "json",
        "--out",
        s(&run_dir),
    ]));
    let history = epochs(&out);
    assert_eq!(history.len(), 8, "{out}");
    let first = history[0]["loss"].as_f64().unwrap();
    let last = history[7]["loss"].as_f64().unwrap();
    assert!(
        last < first,
        "the reconstruction loss fell: {first} -> {last}"
    );

    let weights = run_dir.join("weights.safetensors");
    let eval = eval_train_json(&spec, &weights);
    assert_eq!(eval["samples"], 24, "{eval}");

    // The outputs of the trained weights on the raw rows (run applies the plan's `scale`).
    let run: serde_json::Value = serde_json::from_str(&ok(&modelc(&[
        "run",
        s(&run_dir.join("plan.ron")),
        "--weights",
        s(&weights),
        "--input",
        s(&data),
        "--format",
        "json",
    ])))
    .unwrap();
    let outputs: Vec<Vec<f64>> = run["outputs"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(outputs.len(), rows.len());
    // The target is the model's input: the row times 0.5.
    let (mut se, mut ae, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for (y, x) in outputs.iter().zip(&rows) {
        for (yj, xj) in y.iter().zip(x) {
            let e = yj - f64::from(xj * 0.5);
            se += e * e;
            ae += e.abs();
            n += 1.0;
        }
    }
    let (mse, mae) = (se / n, ae / n);
    let loss = eval["loss"].as_f64().unwrap();
    let mae_eval = eval["mae"].as_f64().unwrap();
    assert!(
        (loss - mse).abs() <= 1e-5 * mse.max(1e-3),
        "eval {loss} vs {mse}"
    );
    assert!(
        (mae_eval - mae).abs() <= 1e-5 * mae.max(1e-3),
        "eval {mae_eval} vs {mae}"
    );
    // No per-class report for an autoencoder.
    assert!(eval.get("report").is_none(), "{eval}");
}

#[test]
fn the_shipped_digits_autoencoder_trains_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = "specs/digits_autoencoder.model";
    let out = ok(&modelc(&[
        "train",
        spec,
        "--epochs",
        "3",
        "--format",
        "json",
        "--out",
        s(dir.path()),
    ]));
    let history = epochs(&out);
    assert_eq!(history.len(), 3, "{out}");
    let val = |i: usize| history[i]["val_loss"].as_f64().unwrap();
    assert!(val(2) < val(0), "val_loss fell: {} -> {}", val(0), val(2));
    // Pixels are in [0, 1]; a sigmoid output rebuilding them has a small mean squared error.
    assert!(val(2) < 0.2, "{}", val(2));
    // `run` rebuilds every digit: 64 values in (0, 1) per row of the csv.
    let run: serde_json::Value = serde_json::from_str(&ok(&modelc(&[
        "run",
        s(&dir.path().join("plan.ron")),
        "--weights",
        s(&dir.path().join("weights.safetensors")),
        "--input",
        "data/digits.csv",
        "--format",
        "json",
    ])))
    .unwrap();
    let rows = run["outputs"][0]["values"].as_array().unwrap();
    assert_eq!(rows.len(), 1797);
    for r in rows {
        let r = r.as_array().unwrap();
        assert_eq!(r.len(), 64);
        assert!(r.iter().all(|v| (0.0..=1.0).contains(&v.as_f64().unwrap())));
    }
}
