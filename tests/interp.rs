//! The interpreter against numpy: Keras-layout weights written by
//! `tests/fixtures/interp/make_fixtures.py` must give the outputs numpy computed (float64
//! reference, compared at 1e-5), for both the optimized and the unoptimized plan.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use modelc::passes::{Mode, PassOptions};
use modelc::plan::{compile, ExecutionPlan};
use modelc::runtime::interp::zoo::{lstm_classifier, seed_cnn, TextSizes};
use modelc::runtime::interp::{Interpreter, TensorRef};
use modelc::runtime::weights::load_weights;
use ndarray::{ArrayD, IxDyn};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/interp")
        .join(name)
}

/// A test-only reader for the little-endian, C-order `<f4` / `<i4` .npy files numpy writes.
fn npy(name: &str) -> (String, Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(fixture(name)).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let descr = header.split("'descr': '").nth(1).unwrap()[..3].to_string();
    let shape_text = header.split("'shape': (").nth(1).unwrap();
    let shape_text = &shape_text[..shape_text.find(')').unwrap()];
    let shape = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    (descr, shape, bytes[start + len..].to_vec())
}

fn npy_f32(name: &str) -> ArrayD<f32> {
    let (descr, shape, data) = npy(name);
    assert_eq!(descr, "<f4");
    let v = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), v).unwrap()
}

fn npy_i32(name: &str) -> ArrayD<i32> {
    let (descr, shape, data) = npy(name);
    assert_eq!(descr, "<i4");
    let v = data
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), v).unwrap()
}

fn plans(graph: &modelc::ir::Graph) -> Vec<ExecutionPlan> {
    [false, true]
        .into_iter()
        .map(|no_optimize| {
            let options = PassOptions {
                no_optimize,
                ..PassOptions::default()
            };
            compile(graph.clone(), Mode::Infer, &options, "fixture".into()).unwrap()
        })
        .collect()
}

fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn seed_cnn_matches_numpy() {
    let x = npy_f32("cnn_input.npy");
    let expected = npy_f32("cnn_expected.npy");
    for plan in plans(&seed_cnn().unwrap()) {
        let w = load_weights(&fixture("cnn.safetensors"), &plan).unwrap();
        let y = Interpreter::new(&plan, w)
            .unwrap()
            .run(&[TensorRef::F32(x.view())])
            .unwrap();
        let d = max_abs_diff(&y[0], &expected);
        assert!(d < 1e-5, "{} steps: max difference {d}", plan.steps.len());
    }
}

#[test]
fn embedding_lstm_matches_numpy() {
    let ids = npy_i32("lstm_input.npy");
    let expected = npy_f32("lstm_expected.npy");
    let sizes = TextSizes {
        vocab: 50,
        embed: 8,
        units: &[6, 5],
        seq: 7,
        classes: 4,
    };
    for plan in plans(&lstm_classifier(sizes).unwrap()) {
        let w = load_weights(&fixture("lstm.safetensors"), &plan).unwrap();
        let y = Interpreter::new(&plan, w)
            .unwrap()
            .run(&[TensorRef::I32(ids.view())])
            .unwrap();
        let d = max_abs_diff(&y[0], &expected);
        assert!(d < 1e-5, "max difference {d}");
    }
}

/// Every model of every shipped spec, compiled for inference with every pass and with none
/// (`-O0`), on the same random stored weights (uniform in [-0.15, 0.15]: every bias in play,
/// and small enough that recurrent gates do not saturate over 100 steps) and random inputs: the outputs agree to f32 rounding. The seed RNN's plan runs its
/// embedding folded into the first LSTM (`fold-embedding-projection`).
#[test]
fn every_shipped_spec_runs_the_same_optimized_and_at_o0() {
    use modelc::ir::ParamSource;
    use modelc::runtime::interp::bench::{random_inputs, OwnedInput};
    use modelc::runtime::weights::Weights;

    let mut folded = 0;
    let mut specs: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    specs.sort();
    for path in specs {
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = modelc::syntax::parse(
            modelc::diag::FileId::default(),
            &text,
            &modelc::syntax::Limits::default(),
        );
        let checked = modelc::check::check_file(modelc::diag::FileId::default(), &parsed.file);
        assert!(!checked.has_errors(), "{}", path.display());
        for model in &checked.models {
            let [opt, o0] =
                <[ExecutionPlan; 2]>::try_from(plans(&modelc::ir::lower(model).unwrap())).unwrap();
            let mut s = 0x9E37_79B9_7F4A_7C15u64;
            let stored: Vec<(String, ArrayD<f32>)> = o0
                .params
                .iter()
                .filter(|p| p.source == ParamSource::Stored)
                .map(|p| {
                    let v = (0..p.elements())
                        .map(|_| {
                            s ^= s << 13;
                            s ^= s >> 7;
                            s ^= s << 17;
                            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.3
                        })
                        .collect();
                    (
                        p.name.clone(),
                        ArrayD::from_shape_vec(IxDyn(&p.shape), v).unwrap(),
                    )
                })
                .collect();
            // Batch 2 and 32: the interpreter's batch slices (one per thread) hold fewer and
            // more sequences than the LSTM's batch path needs.
            for batch in [2, 32] {
                let inputs = random_inputs(&o0, batch, 11);
                let inputs: Vec<TensorRef<'_>> = inputs.iter().map(OwnedInput::as_ref).collect();
                let run = |plan: &ExecutionPlan| {
                    let w = Weights::from_named(plan, stored.clone()).unwrap();
                    Interpreter::new(plan, w).unwrap().run(&inputs).unwrap()
                };
                let (a, b) = (run(&opt), run(&o0));
                let name = format!("{} ({}), batch {batch}", path.display(), o0.model);
                assert_eq!(a.len(), b.len(), "{name}");
                for (x, y) in a.iter().zip(&b) {
                    let d = max_abs_diff(x, y);
                    let scale = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    eprintln!("{name}: max difference {d:e} (outputs up to {scale})");
                    assert!(d <= 2e-6 * scale.max(1.0), "{name}: max difference {d}");
                    assert!(scale > 0.0, "{name}: all-zero outputs");
                }
            }
            if opt.steps.iter().any(|s| s.op.kind() == "embedded_lstm") {
                folded += 1;
            }
        }
    }
    assert!(folded >= 1, "no shipped spec ran a folded embedding");
}

#[test]
fn weights_of_another_model_are_refused_with_every_name() {
    let plan = &plans(&seed_cnn().unwrap())[1];
    let errors = load_weights(&fixture("lstm.safetensors"), plan).unwrap_err();
    let codes: Vec<&str> = errors.iter().map(|d| d.code.as_str()).collect();
    // 9 LSTM-model tensors: dense.kernel/bias have the wrong shape, 7 are unknown; the CNN's
    // other 8 tensors are missing.
    assert_eq!(
        codes.iter().filter(|c| **c == "E0714").count(),
        2,
        "{errors:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "E0712").count(),
        7,
        "{errors:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "E0711").count(),
        8,
        "{errors:?}"
    );
    assert!(errors.iter().all(|d| d
        .external
        .as_ref()
        .is_some_and(|e| e.path.ends_with("lstm.safetensors"))));
    let missing = load_weights(&fixture("no-such.safetensors"), plan).unwrap_err();
    assert_eq!(missing[0].code.as_str(), "E0900");
}
