//! Shared by `tests/export.rs` and `tests/properties.rs`: export a plan to ONNX bytes, run
//! them in tract (an independent ONNX implementation) and compare with modelc's interpreter.

// Each of the two test binaries uses a part of it.
#![allow(dead_code)]

use modelc::export::{self, ExportOptions};
use modelc::plan::ExecutionPlan;
use modelc::runtime::interp::{Interpreter, TensorRef};
use modelc::runtime::weights::Weights;
use ndarray::ArrayD;
use std::sync::atomic::{AtomicUsize, Ordering};
use tract_onnx::prelude::*;

/// How many runs fell back to tract's less rewritten model (see [`run_model`]).
pub static FALLBACKS: AtomicUsize = AtomicUsize::new(0);

/// One input batch, in a dtype both runtimes take.
pub enum Batch {
    F32(ArrayD<f32>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
}

impl Batch {
    pub fn view(&self) -> TensorRef<'_> {
        match self {
            Batch::F32(a) => TensorRef::F32(a.view()),
            Batch::I32(a) => TensorRef::I32(a.view()),
            Batch::I64(a) => TensorRef::I64(a.view()),
        }
    }

    fn to_tract(&self) -> Tensor {
        match self {
            Batch::F32(a) => {
                Tensor::from_shape(a.shape(), &a.iter().copied().collect::<Vec<_>>()).unwrap()
            }
            Batch::I32(a) => {
                Tensor::from_shape(a.shape(), &a.iter().copied().collect::<Vec<_>>()).unwrap()
            }
            Batch::I64(a) => {
                Tensor::from_shape(a.shape(), &a.iter().copied().collect::<Vec<_>>()).unwrap()
            }
        }
    }
}

/// The ONNX bytes of `plan` with `weights` at `opset`.
pub fn export_bytes(plan: &ExecutionPlan, weights: &Weights, opset: i64) -> Vec<u8> {
    let options = ExportOptions {
        opset,
        ..ExportOptions::default()
    };
    export::export(plan, weights, &options).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs ONNX `bytes` in tract on `inputs`, the batch bound to the inputs' (tract's recurrent
/// layers and `Resize` cannot be typed over a symbolic batch; `run_tract_symbolic` keeps it).
pub fn run_tract(bytes: &[u8], inputs: &[&Batch]) -> Vec<ArrayD<f32>> {
    let mut model = onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap_or_else(|e| panic!("tract cannot read the export: {e:?}"));
    for (i, b) in inputs.iter().enumerate() {
        let t = b.to_tract();
        let fact = InferenceFact::dt_shape(t.datum_type(), t.shape());
        model = model.with_input_fact(i, fact).unwrap();
    }
    run_model(model, inputs)
}

/// Runs ONNX `bytes` in tract with the batch left as the model declares it (the symbol `N`).
pub fn run_tract_symbolic(bytes: &[u8], inputs: &[&Batch]) -> Vec<ArrayD<f32>> {
    let model = onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap_or_else(|e| panic!("tract cannot read the export: {e:?}"));
    run_model(model, inputs)
}

/// Runs tract's optimized model. Where tract's own rewriting fails on a graph it reads and
/// types (tract 0.22: codegen of a `MatMul` of a rank-4 input with unit dims at batch 1, its
/// EinSum "substitute" error; decluttering a scan whose output a reshape reads, "Incompatible
/// reshape"), or its optimized kernels panic (tract 0.22's im2col subtracts past zero on a
/// dilated `same` conv over a 1 × 1 map), its less rewritten model runs instead: decluttered,
/// else plainly typed. Both run the same ONNX semantics; only tract's optimizer is skipped.
fn run_model(model: InferenceModel, inputs: &[&Batch]) -> Vec<ArrayD<f32>> {
    let typed = model
        .into_typed()
        .unwrap_or_else(|e| panic!("tract cannot type the export: {e:?}"));
    let tensors: TVec<TValue> = inputs.iter().map(|b| b.to_tract().into()).collect();
    let optimize_and_run = std::panic::AssertUnwindSafe(|| {
        let model = typed.clone().into_optimized().ok()?.into_runnable().ok()?;
        Some(model.run(tensors.clone()))
    });
    let optimized = std::panic::catch_unwind(optimize_and_run).ok().flatten();
    let outputs = if let Some(outputs) = optimized {
        outputs
    } else {
        FALLBACKS.fetch_add(1, Ordering::Relaxed);
        let model = match typed.clone().into_decluttered() {
            Ok(decluttered) => decluttered.into_runnable().unwrap(),
            Err(_) => typed.into_runnable().unwrap(),
        };
        model.run(tensors)
    };
    let outputs = outputs.unwrap_or_else(|e| panic!("tract cannot run the export: {e:?}"));
    outputs
        .iter()
        .map(|t| {
            let t = t.cast_to::<f32>().unwrap();
            ArrayD::from_shape_vec(t.shape().to_vec(), t.as_slice::<f32>().unwrap().to_vec())
                .unwrap()
        })
        .collect()
}

/// modelc's interpreter on the same inputs.
pub fn run_modelc(plan: &ExecutionPlan, weights: Weights, inputs: &[&Batch]) -> Vec<ArrayD<f32>> {
    let mut interp = Interpreter::new(plan, weights).unwrap();
    let views: Vec<TensorRef<'_>> = inputs.iter().map(|b| b.view()).collect();
    interp.run(&views).unwrap()
}

/// The largest `|a - b| / max(1, |b|)`; the shapes must match.
pub fn max_error(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape(), "output shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| {
            assert!(x.is_finite() && y.is_finite(), "{x} vs {y}");
            (x - y).abs() / y.abs().max(1.0)
        })
        .fold(0.0, f32::max)
}

/// Exports `plan`, runs it in tract and in the interpreter on each input batch; returns the
/// largest relative difference.
pub fn compare(plan: &ExecutionPlan, weights: &Weights, batches: &[Vec<Batch>], opset: i64) -> f32 {
    let bytes = export_bytes(plan, weights, opset);
    let mut worst = 0.0f32;
    for inputs in batches {
        let refs: Vec<&Batch> = inputs.iter().collect();
        let ours = run_modelc(plan, weights.clone(), &refs);
        let theirs = run_tract(&bytes, &refs);
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in theirs.iter().zip(&ours) {
            worst = worst.max(max_error(a, b));
        }
    }
    worst
}
