//! The input arrays of `modelc run`: `.npy` files read and checked against the plan's input
//! signature (dtype, rank, non-batch dimensions; token ids as int32 or int64), then the plan's
//! fitted preprocessing applied.
//!
//! Input: the plan and one path per model input. Output: arrays in a dtype the interpreter
//! takes, or diagnostics naming the file (E06xx/E08xx, I/O as E09xx).

use crate::cli::common::read_bytes;
use crate::data::npy::{read_npy, NpyArray, NpyData};
use crate::diag::{codes, Diagnostic};
use crate::ir;
use crate::plan::ExecutionPlan;
use crate::runtime::interp::TensorRef;
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};

/// One input array as read, in a dtype the interpreter takes.
pub(super) enum InputArray {
    F32(ArrayD<f32>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
}

impl InputArray {
    /// The leading (batch) dimension; 1 for a scalar.
    pub(super) fn batch(&self) -> usize {
        let shape = match self {
            InputArray::F32(a) => a.shape(),
            InputArray::I32(a) => a.shape(),
            InputArray::I64(a) => a.shape(),
        };
        shape.first().copied().unwrap_or(1)
    }

    pub(super) fn as_tensor(&self) -> TensorRef<'_> {
        match self {
            InputArray::F32(a) => TensorRef::F32(a.view()),
            InputArray::I32(a) => TensorRef::I32(a.view()),
            InputArray::I64(a) => TensorRef::I64(a.view()),
        }
    }
}

/// Applies the plan's fitted preprocessing (the training pipeline's `map` steps) to raw input,
/// as the training data went through it.
pub(super) fn preprocess(
    steps: &[crate::data::spec::Step<crate::data::spec::Transform>],
    input: InputArray,
) -> Result<InputArray, Vec<Diagnostic>> {
    use crate::data::samples::{Features, Labels, Samples};
    let features = match input {
        InputArray::F32(a) => Features::F32(a),
        InputArray::I32(a) => Features::I64(a.mapv(i64::from)),
        InputArray::I64(a) => Features::I64(a),
    };
    let samples = Samples {
        features,
        labels: Labels::None,
    };
    let out = crate::data::transform::apply_fitted_steps(steps, samples).map_err(|d| {
        vec![d.help("the input must be raw data as the training pipeline's source yields it; `--no-preprocess` feeds it to the model as it is")]
    })?;
    Ok(match out.features {
        Features::F32(a) => InputArray::F32(a),
        Features::I64(a) => InputArray::I64(a),
    })
}

/// Reads one `.npy` per plan input; the interpreter checks shapes and dtypes against the plan.
pub(super) fn read_inputs(
    plan: &ExecutionPlan,
    paths: &[PathBuf],
) -> Result<Vec<InputArray>, Vec<Diagnostic>> {
    let facts: Vec<(&str, &ir::Fact)> = plan
        .inputs
        .iter()
        .filter_map(|&v| plan.values.get(v as usize))
        .map(|v| (v.name.as_str(), &v.fact))
        .collect();
    if facts.len() != paths.len() {
        let names: Vec<String> = facts.iter().map(|(n, f)| format!("{n}: {f}")).collect();
        return Err(vec![Diagnostic::error(
            codes::RUN_INPUT_COUNT,
            format!(
                "the model takes {} input(s), {} `--input` file(s) given",
                facts.len(),
                paths.len()
            ),
        )
        .note(format!("the inputs are, in order: {}", names.join(", ")))]);
    }
    let mut arrays = Vec::with_capacity(paths.len());
    let mut diags = Vec::new();
    for (path, (name, fact)) in paths.iter().zip(&facts) {
        match read_input(path, name, fact) {
            Ok(a) => arrays.push(a),
            Err(d) => diags.push(d),
        }
    }
    if diags.is_empty() {
        Ok(arrays)
    } else {
        Err(diags)
    }
}

fn read_input(path: &Path, name: &str, fact: &ir::Fact) -> Result<InputArray, Diagnostic> {
    let shown = path.display().to_string();
    let bytes = read_bytes(path)?;
    let NpyArray { shape, data } = read_npy(&bytes).map_err(|e| {
        Diagnostic::error(codes::DATA_NPY_MALFORMED, format!("{shown}: {e}")).at_external(
            shown.clone(),
            0,
            0,
        )
    })?;
    let wrong_dtype = |found: &str, help: &str| {
        Diagnostic::error(
            codes::RUN_INPUT_DTYPE,
            format!("input `{name}` in {shown} has dtype {found}, the model declares {fact}"),
        )
        .at_external(shown.clone(), 0, 0)
        .help(help.to_string())
    };
    let shape = IxDyn(&shape);
    let bad_shape = |e: ndarray::ShapeError| {
        Diagnostic::error(codes::DATA_NPY_MALFORMED, format!("{shown}: {e}")).at_external(
            shown.clone(),
            0,
            0,
        )
    };
    let declared_int = fact.dtype != ir::DType::F32;
    match data {
        NpyData::F32(v) => ArrayD::from_shape_vec(shape, v)
            .map(InputArray::F32)
            .map_err(bad_shape),
        NpyData::I32(v) => ArrayD::from_shape_vec(shape, v)
            .map(InputArray::I32)
            .map_err(bad_shape),
        NpyData::I64(v) => ArrayD::from_shape_vec(shape, v)
            .map(InputArray::I64)
            .map_err(bad_shape),
        NpyData::F64(_) if declared_int => Err(wrong_dtype(
            "float64",
            "save token ids as integers: `np.save(path, x.astype(np.int64))`",
        )),
        NpyData::F64(_) => Err(wrong_dtype(
            "float64",
            "convert it: `np.save(path, x.astype(np.float32))`",
        )),
        NpyData::U8(_) => Err(wrong_dtype(
            "uint8",
            if declared_int {
                "save token ids as int32 or int64"
            } else {
                "convert and scale it: `np.save(path, (x / 255).astype(np.float32))`"
            },
        )),
    }
}
