//! `modelc run`'s inputs and outputs end to end (issue 21, "Predicting"): the binary on CSV
//! files, PNG images and folders, float64 `.npy`, against references computed independently:
//! the same rows as an `.npy` array, the pipeline applied by hand (reshape, ×1/16, the library's
//! bilinear kernel) and fed with `--model-input`, the library interpreter, and the printed
//! output values themselves (top-k and the CSV checked against them).

// Test code: a failed unwrap is a failed test; outputs are compared bit for bit on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp
)]

use modelc::data::image::{resize_bilinear, Dims};
use modelc::data::npy::{read_npy, write_npy, NpyData};
use std::path::Path;

mod common;

use common::{modelc, s};

const CNN: &str = "specs/seed_cnn.model";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the seed CNN with fresh weights (seed 11) on `input`, writing the raw outputs to `y`.
fn run_cnn(input: &Path, y: &Path, extra: &[&str]) -> Vec<f32> {
    let mut args = vec![
        "run",
        CNN,
        "--random-weights",
        "11",
        "--input",
        s(input),
        "-o",
        s(y),
    ];
    args.extend(extra);
    let o = modelc(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let a = read_npy(&std::fs::read(y).unwrap()).unwrap();
    let NpyData::F32(v) = a.data else {
        panic!("not f32")
    };
    v
}

/// The first `n` rows of the digits CSV: 64 pixel values (0..16) each.
fn digit_rows(n: usize) -> Vec<Vec<f32>> {
    let csv = std::fs::read_to_string("data/digits.csv").unwrap();
    csv.lines()
        .skip(1)
        .take(n)
        .map(|l| l.split(',').take(64).map(|v| v.parse().unwrap()).collect())
        .collect()
}

/// The seed CNN's pipeline by hand: `reshape(8, 8, 1) |> scale(1/16) |> resize(28, 28)`.
fn by_hand(rows: &[Vec<f32>]) -> Vec<f32> {
    let from = Dims { h: 8, w: 8, c: 1 };
    let to = Dims { h: 28, w: 28, c: 1 };
    rows.iter()
        .flat_map(|r| {
            let scaled: Vec<f32> = r.iter().map(|v| v * (1.0 / 16.0)).collect();
            let mut out = vec![0.0; 784];
            resize_bilinear(&scaled, from, to, &mut out);
            out
        })
        .collect()
}

/// A grayscale 8-bit PNG written with the `png` crate.
fn write_png(path: &Path, width: u32, height: u32, pixels: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .unwrap()
        .write_image_data(pixels)
        .unwrap();
}

/// An NPY v1 file of `<f8` values (np.save of a float64 array).
fn f64_npy(path: &Path, shape: &[usize], values: &[f64]) {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn csv_rows_with_or_without_the_label_match_the_npy_and_the_pipeline_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let all = std::fs::read_to_string("data/digits.csv").unwrap();
    let with_label: Vec<&str> = all.lines().take(4).collect();
    std::fs::write(d.join("labelled.csv"), with_label.join("\n") + "\n").unwrap();
    // The same rows without the `target` column (the last one).
    let without: Vec<String> = with_label
        .iter()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect();
    std::fs::write(d.join("unlabelled.csv"), without.join("\n") + "\n").unwrap();
    let rows = digit_rows(3);
    write_npy(&d.join("raw.npy"), &[3, 64], &rows.concat()).unwrap();
    write_npy(&d.join("ready.npy"), &[3, 28, 28, 1], &by_hand(&rows)).unwrap();

    let y = d.join("y.npy");
    let from_npy = run_cnn(&d.join("raw.npy"), &y, &[]);
    assert_eq!(from_npy.len(), 30);
    assert_eq!(run_cnn(&d.join("labelled.csv"), &y, &[]), from_npy);
    assert_eq!(run_cnn(&d.join("unlabelled.csv"), &y, &[]), from_npy);
    let ready = run_cnn(&d.join("ready.npy"), &y, &["--model-input"]);
    for (a, b) in ready.iter().zip(&from_npy) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // Softmax rows: the values are the model's, not zeros.
    assert!((from_npy[..10].iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn a_png_gives_the_outputs_of_its_pixels_through_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let y = d.join("y.npy");
    // An 8×8 image enters at the pipeline's `reshape(8, 8, 1)`: its pixels are a raw row.
    let pixels: Vec<u8> = (0..64u32).map(|i| ((i * 37) % 17) as u8).collect();
    write_png(&d.join("digit.png"), 8, 8, &pixels);
    let as_floats: Vec<f32> = pixels.iter().map(|&p| f32::from(p)).collect();
    write_npy(&d.join("pixels.npy"), &[1, 64], &as_floats).unwrap();
    let from_png = run_cnn(&d.join("digit.png"), &y, &[]);
    assert_eq!(from_png, run_cnn(&d.join("pixels.npy"), &y, &[]));

    // A 16×16 image is resized to the pipeline's 8×8 first, with the pipeline's own kernel.
    let big: Vec<u8> = (0..256u32).map(|i| ((i * 11) % 16) as u8).collect();
    write_png(&d.join("big.png"), 16, 16, &big);
    let big_f: Vec<f32> = big.iter().map(|&p| f32::from(p)).collect();
    let mut small = vec![0.0; 64];
    resize_bilinear(
        &big_f,
        Dims { h: 16, w: 16, c: 1 },
        Dims { h: 8, w: 8, c: 1 },
        &mut small,
    );
    write_npy(&d.join("small.npy"), &[1, 64], &small).unwrap();
    assert_eq!(
        run_cnn(&d.join("big.png"), &y, &[]),
        run_cnn(&d.join("small.npy"), &y, &[])
    );
}

#[test]
fn an_image_folder_is_its_images_in_name_order_with_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let folder = d.join("digits");
    std::fs::create_dir(&folder).unwrap();
    let rows = digit_rows(2);
    let as_u8 = |r: &[f32]| r.iter().map(|&v| v as u8).collect::<Vec<u8>>();
    // Written in reverse name order; a text file beside them is not an image.
    write_png(&folder.join("b.png"), 8, 8, &as_u8(&rows[1]));
    write_png(&folder.join("a.PNG"), 8, 8, &as_u8(&rows[0]));
    std::fs::write(folder.join("notes.txt"), "not an image").unwrap();
    write_npy(&d.join("raw.npy"), &[2, 64], &rows.concat()).unwrap();
    let y = d.join("y.npy");
    assert_eq!(
        run_cnn(&folder, &y, &[]),
        run_cnn(&d.join("raw.npy"), &y, &[])
    );
    let o = modelc(&[
        "run",
        CNN,
        "--random-weights",
        "11",
        "--input",
        s(&folder),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let files: Vec<&str> = j["outputs"][0]["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["a.PNG", "b.png"]);

    let o = modelc(&["run", CNN, "--random-weights", "11", "--input", s(&folder)]);
    let shown = text(&o.stdout);
    assert!(
        shown.contains("  row  file   ") && shown.contains("    1  b.png"),
        "{shown}"
    );

    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = modelc(&["run", CNN, "--random-weights", "1", "--input", s(&empty)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("error[E0813]"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn float64_npy_is_converted_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = digit_rows(2);
    let flat = rows.concat();
    let as_f64: Vec<f64> = flat.iter().map(|&v| f64::from(v)).collect();
    f64_npy(&d.join("x64.npy"), &[2, 64], &as_f64);
    write_npy(&d.join("x32.npy"), &[2, 64], &flat).unwrap();
    let y = d.join("y.npy");
    let o = modelc(&[
        "run",
        CNN,
        "--random-weights",
        "11",
        "--input",
        s(&d.join("x64.npy")),
        "-o",
        s(&y),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("Note") && err.contains("x64.npy holds float64 values; converted to float32"),
        "{err}"
    );
    let converted = std::fs::read(&y).unwrap();
    assert_eq!(run_cnn(&d.join("x32.npy"), &y, &[]), {
        let a = read_npy(&converted).unwrap();
        let NpyData::F32(v) = a.data else { panic!() };
        v
    });
}

#[test]
fn a_wrong_shape_is_e0802_naming_the_file_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("short.npy");
    write_npy(&x, &[2, 63], &[0.0; 126]).unwrap();
    let o = modelc(&["run", CNN, "--random-weights", "1", "--input", s(&x)]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("error[E0802]: input `image` in ")
            && err.contains("short.npy has shape [2, 63], the model's raw input is f32[N, 64]")
            && err.contains("--model-input"),
        "{err}"
    );
    assert!(!err.contains("ShapeError"), "{err}");
    // The same array with `--model-input` meets the interpreter's check.
    let o = modelc(&[
        "run",
        CNN,
        "--random-weights",
        "1",
        "--input",
        s(&x),
        "--model-input",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("error[E0802]: input `image` has shape [2, 63]"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn top_k_and_preds_csv_agree_with_the_raw_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_npy(&d.join("raw.npy"), &[4, 64], &digit_rows(4).concat()).unwrap();
    let y = d.join("y.npy");
    let values = run_cnn(&d.join("raw.npy"), &y, &[]);
    let o = modelc(&[
        "run",
        CNN,
        "--random-weights",
        "11",
        "--input",
        s(&d.join("raw.npy")),
        "--top-k",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let output = &j["outputs"][0];
    assert_eq!(output["shape"], serde_json::json!([4, 10]));
    let predictions = output["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 4);
    for (row, p) in predictions.iter().enumerate() {
        assert_eq!(p["row"], row);
        let top = p["top"].as_array().unwrap();
        assert_eq!(top.len(), 10);
        let probs: Vec<f64> = top
            .iter()
            .map(|t| t["probability"].as_f64().unwrap())
            .collect();
        assert!(probs.windows(2).all(|w| w[0] >= w[1]), "{probs:?}");
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        for t in top {
            let class = usize::try_from(t["class"].as_u64().unwrap()).unwrap();
            let value = values[row * 10 + class];
            // JSON holds the f32 widened to f64; read back, it rounds to the same f32.
            #[allow(clippy::cast_possible_truncation)]
            let got = t["probability"].as_f64().unwrap() as f32;
            assert_eq!(got, value);
        }
    }

    let preds = d.join("preds.csv");
    let o = modelc(&[
        "run",
        CNN,
        "--random-weights",
        "11",
        "--input",
        s(&d.join("raw.npy")),
        "--top-k",
        "2",
        "-o",
        s(&preds),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let csv = std::fs::read_to_string(&preds).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("row,class,probability,class_2,probability_2")
    );
    let mut count = 0;
    for (row, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], row.to_string());
        let scores = &values[row * 10..row * 10 + 10];
        let mut order: Vec<usize> = (0..10).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        for k in 0..2 {
            assert_eq!(cells[1 + 2 * k], order[k].to_string());
            assert_eq!(cells[2 + 2 * k].parse::<f32>().unwrap(), scores[order[k]]);
        }
        count += 1;
    }
    assert_eq!(count, 4);

    // A regressor has no classes to rank.
    let x = d.join("x16.npy");
    write_npy(&x, &[1, 16], &[0.5; 16]).unwrap();
    let o = modelc(&[
        "run",
        "specs/linear_regression.model",
        "--random-weights",
        "1",
        "--input",
        s(&x),
        "--top-k",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("is not a classifier"));
}

#[test]
fn a_regressors_preds_csv_holds_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = d.join("x.npy");
    write_npy(&x, &[2, 16], &[0.25; 32]).unwrap();
    let y = d.join("y.npy");
    let o = modelc(&[
        "run",
        "specs/linear_regression.model",
        "--random-weights",
        "1",
        "--input",
        s(&x),
        "-o",
        s(&y),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let NpyData::F32(values) = read_npy(&std::fs::read(&y).unwrap()).unwrap().data else {
        panic!()
    };
    let preds = d.join("preds.csv");
    let o = modelc(&[
        "run",
        "specs/linear_regression.model",
        "--random-weights",
        "1",
        "--input",
        s(&x),
        "-o",
        s(&preds),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let csv = std::fs::read_to_string(&preds).unwrap();
    assert_eq!(
        csv,
        format!("row,dense_0\n0,{}\n1,{}\n", values[0], values[1])
    );
}

/// What `inspect` shows of the input rule, from the first line after the spec hash to the
/// `inputs:` list.
fn input_section(stdout: &[u8]) -> String {
    let shown = text(stdout);
    let start = shown.find("run input").unwrap();
    let end = shown.find("\ninputs:").unwrap();
    shown[start..end].to_string()
}

#[test]
fn inspect_shows_one_input_rule_for_a_spec_and_its_compiled_plan() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.ron");
    let o = modelc(&["compile", CNN, "-o", s(&plan)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let expected = "\
run input (raw data; `modelc run --model-input` skips the steps):
  raw input      f32[N, 64]
  read as        CSV rows like ../data/digits.csv: 64 feature columns, label column `target` (may be absent), a header row
  preprocessing  1. reshape(8, 8, 1)
                 2. scale(0.0625)
                 3. resize(28, 28)
  model input    image: f32[N, 28, 28, 1]
";
    for file in [CNN, s(&plan)] {
        let o = modelc(&["inspect", file]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert_eq!(input_section(&o.stdout), expected, "{file}");
        let o = modelc(&["inspect", file, "--format", "json"]);
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            j["run_input"],
            serde_json::json!({
                "raw": "f32[N, 64]",
                "source": "CSV rows like ../data/digits.csv: 64 feature columns, label column `target` (may be absent), a header row",
                "preprocessing": ["reshape(8, 8, 1)", "scale(0.0625)", "resize(28, 28)"],
                "model": "image: f32[N, 28, 28, 1]",
            })
        );
    }
    // A model no train block trains: its raw input is its model input.
    let tiny = dir.path().join("tiny.model");
    std::fs::write(
        &tiny,
        "model Tiny(x: f32[N, 2]) -> f32[N, 1] {\n    dense(1)\n}\n",
    )
    .unwrap();
    let o = modelc(&["inspect", s(&tiny)]);
    assert_eq!(
        input_section(&o.stdout),
        "run input (raw data; `modelc run --model-input` skips the steps):
  raw input      x: f32[N, 2] (the model input: no steps)
  preprocessing  none
  model input    x: f32[N, 2]
"
    );
    // `run --help` states the rule.
    let o = modelc(&["run", "--help"]);
    let help = text(&o.stdout);
    assert!(
        help.contains("Inputs are raw data") && help.contains("--model-input"),
        "{help}"
    );
}

/// A spec whose pipeline standardizes: trained, its plan carries fitted statistics and takes
/// raw CSV rows; the `.model` itself has none to apply (E0811) unless `--model-input`.
#[test]
fn a_trained_plan_standardizes_raw_rows_and_the_spec_refuses_without_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let points = std::fs::canonicalize("tests/fixtures/data/points.csv").unwrap();
    let spec = d.join("points.model");
    std::fs::write(
        &spec,
        format!(
            "model P(x: f32[N, 2]) -> f32[N, 3] {{\n    dense(3, activation: softmax)\n}}\n\n\
             data Points {{\n    source csv(\"{}\", label: \"target\", features: 2, classes: 3)\n    \
             map    standardize()\n    batch  all\n}}\n\n\
             train P on Points {{\n    loss      sparse_categorical_crossentropy\n    \
             optimizer sgd(lr: 0.1)\n    epochs    1\n}}\n",
            points.display()
        ),
    )
    .unwrap();
    let run_dir = d.join("run");
    let o = modelc(&["train", s(&spec), "--out", s(&run_dir)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let plan = run_dir.join("plan.ron");
    let weights = run_dir.join("weights.safetensors");
    let parsed =
        modelc::plan::ExecutionPlan::from_ron(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let Some(modelc::data::spec::Transform::Standardize {
        fitted: Some(fitted),
    }) = parsed
        .preprocessing
        .as_ref()
        .and_then(|s| s.first())
        .map(|s| &s.op)
    else {
        panic!("no fitted standardize in {:?}", parsed.preprocessing)
    };
    // The raw rows (with their label column) and the same standardized by hand.
    let csv = std::fs::read_to_string(&points).unwrap();
    let rows: Vec<Vec<f32>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(2).map(|v| v.parse().unwrap()).collect())
        .collect();
    let ready: Vec<f32> = rows
        .iter()
        .flat_map(|r| {
            r.iter()
                .enumerate()
                .map(|(j, v)| (v - fitted.shift[j]) / fitted.scale[j])
                .collect::<Vec<_>>()
        })
        .collect();
    let ready_path = d.join("ready.npy");
    write_npy(&ready_path, &[rows.len(), 2], &ready).unwrap();
    let run = |file: &Path, input: &Path, extra: &[&str]| {
        let mut args = vec![
            "run",
            s(file),
            "--weights",
            s(&weights),
            "--input",
            s(input),
        ];
        args.extend(["--format", "json"]);
        args.extend(extra);
        modelc(&args)
    };
    let raw = run(&plan, &points, &[]);
    assert_eq!(raw.status.code(), Some(0), "{}", text(&raw.stderr));
    let by_hand = run(&plan, &ready_path, &["--model-input"]);
    let a: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&by_hand.stdout).unwrap();
    let values = |j: &serde_json::Value| -> Vec<f64> {
        j["outputs"][0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect()
    };
    assert_eq!(values(&a).len(), rows.len() * 3);
    for (x, y) in values(&a).iter().zip(values(&b)) {
        assert!((x - y).abs() < 1e-6, "{x} vs {y}");
    }
    let o = run(&spec, &points, &[]);
    assert_eq!(o.status.code(), Some(1));
    let d811: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d811["code"], "E0811");
    let o = run(&spec, &ready_path, &["--model-input"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(values(&c), values(&b));
}
