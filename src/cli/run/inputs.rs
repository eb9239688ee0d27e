//! The input arrays of `modelc run`: read from `.npy`, CSV or image files (or a folder of images)
//! and checked against the raw input the plan's pipeline takes (see [`crate::cli::run_input`]), then
//! the pipeline's `map` steps applied.
//!
//! Input: the plan, its input steps, one path per model input. Output: arrays in a dtype the
//! interpreter takes, one name per row when the rows are image files, and notes for people (a
//! float64 array converted); or diagnostics naming the file: E0802 for a shape that is not the
//! raw input's, E0801 for a dtype, E06xx for CSV and `.npy` problems, E0812/E0813 for images,
//! E0900 for I/O. CSV rows follow the data block's column rules (its label column may be there
//! or not); without a CSV source, every column is a feature and a non-numeric first row is a
//! header.

use super::image::{folder_images, image_shape, is_image, read_images};
use crate::cli::common::read_bytes;
use crate::cli::run_input::{describe, model_input, raw_fact};
use crate::data::npy::{read_npy, NpyArray, NpyData};
use crate::data::spec::{
    CsvSource, FeatureColumns, LabelRead, SourceKind, SourceSpec, Step, Transform,
};
use crate::diag::{codes, Diagnostic};
use crate::ir::{self, Dim};
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
    pub(super) fn shape(&self) -> &[usize] {
        match self {
            InputArray::F32(a) => a.shape(),
            InputArray::I32(a) => a.shape(),
            InputArray::I64(a) => a.shape(),
        }
    }

    /// The leading (batch) dimension; 1 for a scalar.
    pub(super) fn batch(&self) -> usize {
        self.shape().first().copied().unwrap_or(1)
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
    steps: &[Step<Transform>],
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
    match out.features {
        Features::F32(a) => Ok(InputArray::F32(a)),
        Features::I64(a) => Ok(InputArray::I64(a)),
        Features::Groups(_) => Err(vec![Diagnostic::error(
            codes::DATA_STEP_MISMATCH,
            "the preprocessing made input groups of one input",
        )]),
    }
}

/// What `read_inputs` read.
pub(super) struct ReadInputs {
    pub arrays: Vec<InputArray>,
    /// One name per row when the rows are image files.
    pub row_names: Option<Vec<String>>,
    /// Lines for people (conversions made), printed as notes.
    pub notes: Vec<String>,
}

/// Reads one input per plan input (a folder or image only for a model with one input; a CSV
/// file by the source's column rules for one input, every column for several) and checks each
/// against the raw input its `per_input` steps take.
pub(super) fn read_inputs(
    plan: &ExecutionPlan,
    paths: &[PathBuf],
    per_input: &[Vec<Step<Transform>>],
) -> Result<ReadInputs, Vec<Diagnostic>> {
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
    let mut read = ReadInputs {
        arrays: Vec::with_capacity(paths.len()),
        row_names: None,
        notes: Vec::new(),
    };
    let mut diags = Vec::new();
    for (i, (path, (name, fact))) in paths.iter().zip(&facts).enumerate() {
        let steps = per_input.get(i).map_or(&[][..], Vec::as_slice);
        // A multi-input model's CSV input: every column, the raw columns of its input group.
        let one = if facts.len() > 1 && is_csv(path) {
            read_csv(path, None).map(InputArray::F32)
        } else if path.is_dir() || is_image(path) || is_csv(path) {
            read_rows(plan, path, steps).map(|(a, names)| {
                read.row_names = names;
                InputArray::F32(a)
            })
        } else {
            read_input(path, name, fact, &mut read.notes)
        };
        match one.and_then(|a| check_raw_shape(a, path, name, fact, steps)) {
            Ok(a) => read.arrays.push(a),
            Err(d) => diags.push(d),
        }
    }
    if diags.is_empty() {
        Ok(read)
    } else {
        Err(diags)
    }
}

/// `x.csv` or `x.csv.gz`, in any case.
fn is_csv(path: &Path) -> bool {
    let csv = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    csv(path) || (gz && csv(Path::new(path.file_stem().unwrap_or_default())))
}

/// A folder, image or CSV file: rows for a model with one input, as `f32`.
fn read_rows(
    plan: &ExecutionPlan,
    path: &Path,
    steps: &[Step<Transform>],
) -> Result<(ArrayD<f32>, Option<Vec<String>>), Diagnostic> {
    let shown = path.display().to_string();
    let Some((_, fact)) = model_input(plan).filter(|_| plan.inputs.len() == 1) else {
        return Err(Diagnostic::error(
            codes::IO_USAGE,
            format!(
                "{shown}: image inputs feed a model with one input, this one has {}",
                plan.inputs.len()
            ),
        )
        .help("give one `.npy` or `.csv` file per model input"));
    };
    if is_csv(path) {
        return read_csv(path, plan.source.as_ref()).map(|a| (a, None));
    }
    let Some(want) = image_shape(steps, fact) else {
        return Err(Diagnostic::error(
            codes::RUN_IMAGE_MISFIT,
            format!("{shown}: the model takes {fact}, not images"),
        )
        .at_external(shown.clone(), 0, 0)
        .help("images feed a model whose input (or whose pipeline's first `reshape`) is `[height, width, channels]`"));
    };
    let files = if path.is_dir() {
        folder_images(path)?
    } else {
        vec![path.to_path_buf()]
    };
    let names = files
        .iter()
        .map(|f| {
            f.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        })
        .collect();
    read_images(&files, want).map(|a| (a, Some(names)))
}

/// CSV rows by the source's column rules (label column present or not), or every column.
fn read_csv(path: &Path, source: Option<&SourceSpec>) -> Result<ArrayD<f32>, Diagnostic> {
    let shown = path.display().to_string();
    let bytes = crate::data::source::read_bytes(path)?;
    let read = |csv: CsvSource| -> Result<ArrayD<f32>, Diagnostic> {
        let spec = SourceSpec {
            kind: SourceKind::Csv(csv),
            span: crate::diag::Span::default(),
        };
        let samples = crate::data::source::load_bytes(&spec, &bytes, None)?;
        match samples.features {
            crate::data::samples::Features::F32(a) => Ok(a),
            crate::data::samples::Features::I64(a) => Ok(a.mapv(|v| v as f32)),
            // A source yields one tensor: groups are cut by the loader.
            crate::data::samples::Features::Groups(_) => Err(Diagnostic::error(
                codes::DATA_STEP_MISMATCH,
                "a csv source yields one feature tensor",
            )),
        }
    };
    if let Some(SourceKind::Csv(c)) = source.map(|s| &s.kind) {
        let declared = CsvSource {
            path: shown.clone(),
            ..c.clone()
        };
        let with_label = read(declared.clone());
        return match (&with_label, &declared.label) {
            (Err(first), Some(_)) => read(CsvSource {
                label: None,
                more_labels: Vec::new(),
                ..declared
            })
            .map_err(|second| {
                first.clone().note(format!(
                    "read without the label column, it fails too: {}",
                    second.message
                ))
            }),
            _ => with_label,
        };
    }
    let every_column = CsvSource {
        path: shown.clone(),
        label: None,
        label_read: LabelRead::Value,
        features: FeatureColumns::AllButLabel { count: None },
        header: false,
        more_labels: Vec::new(),
        label_spans: Vec::new(),
    };
    read(every_column.clone()).or_else(|first| {
        read(CsvSource {
            header: true,
            ..every_column
        })
        .map_err(|_| first)
    })
}

/// E0802 when an array is not the raw input `steps` take: the same per-row shape, or when the
/// first step is a `reshape`, the same number of values per row.
fn check_raw_shape(
    array: InputArray,
    path: &Path,
    name: &str,
    model_fact: &ir::Fact,
    steps: &[Step<Transform>],
) -> Result<InputArray, Diagnostic> {
    if steps.is_empty() {
        return Ok(array);
    }
    let Ok(raw) = raw_fact(steps, model_fact) else {
        return Ok(array);
    };
    let shape = array.shape().to_vec();
    let row = shape.get(1..).unwrap_or_default().to_vec();
    let raw_row = raw.dims.get(1..).unwrap_or_default();
    let reshaped_first = matches!(
        steps.first().map(|s| &s.op),
        Some(Transform::Reshape { .. })
    );
    let fits = if reshaped_first {
        let want: Option<usize> = raw_row
            .iter()
            .map(Dim::known)
            .try_fold(1usize, |a, d| a.checked_mul(d?));
        want.is_none_or(|w| row.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) == Some(w))
    } else {
        row.len() == raw_row.len()
            && row
                .iter()
                .zip(raw_row)
                .all(|(&got, want)| want.known().is_none_or(|w| w == got))
    };
    if fits && !shape.is_empty() {
        return Ok(array);
    }
    let shown = path.display().to_string();
    Err(Diagnostic::error(
        codes::RUN_INPUT_SHAPE,
        format!("input `{name}` in {shown} has shape {shape:?}, the model's raw input is {raw}"),
    )
    .at_external(shown, 0, 0)
    .note(format!(
        "`run` takes raw data, as the data block's source reads it, and applies the pipeline's steps ({}) to make the model input {model_fact}",
        steps
            .iter()
            .map(|s| describe(&s.op))
            .collect::<Vec<_>>()
            .join(" |> ")
    ))
    .help(format!(
        "give rows of the raw shape, or pass `--model-input` to feed {model_fact} arrays as they are"
    )))
}

fn read_input(
    path: &Path,
    name: &str,
    fact: &ir::Fact,
    notes: &mut Vec<String>,
) -> Result<InputArray, Diagnostic> {
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
    let dims = IxDyn(&shape);
    // `read_npy` checked that the values fill the shape; a failure here is a reader bug.
    let bad_shape = |_| {
        Diagnostic::error(
            codes::DATA_NPY_MALFORMED,
            format!("{shown}: the values do not fill the shape {shape:?}"),
        )
        .at_external(shown.clone(), 0, 0)
    };
    let declared_int = fact.dtype != ir::DType::F32;
    match data {
        NpyData::F32(v) => ArrayD::from_shape_vec(dims, v)
            .map(InputArray::F32)
            .map_err(bad_shape),
        NpyData::I32(v) => ArrayD::from_shape_vec(dims, v)
            .map(InputArray::I32)
            .map_err(bad_shape),
        NpyData::I64(v) => ArrayD::from_shape_vec(dims, v)
            .map(InputArray::I64)
            .map_err(bad_shape),
        NpyData::F64(_) if declared_int => Err(wrong_dtype(
            "float64",
            "save token ids as integers: `np.save(path, x.astype(np.int64))`",
        )),
        NpyData::F64(v) => {
            notes.push(format!(
                "{shown} holds float64 values; converted to float32 for the model"
            ));
            #[allow(clippy::cast_possible_truncation)]
            // float64 → float32 is the conversion asked for
            let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
            ArrayD::from_shape_vec(dims, v)
                .map(InputArray::F32)
                .map_err(bad_shape)
        }
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
