//! Problems with weights, each named by its tensor where there is one, and their diagnostics
//! (E08xx, E0900/E0901 for I/O; a Keras or PyTorch file gets the converter to run).

use std::path::Path;

use thiserror::Error;

use super::Foreign;
use crate::diag::codes::{
    WEIGHTS_DTYPE, WEIGHTS_FORMAT, WEIGHTS_KERAS_FILE, WEIGHTS_MISSING, WEIGHTS_NON_FINITE,
    WEIGHTS_PLAN_MISMATCH, WEIGHTS_SHAPE, WEIGHTS_TOO_LARGE, WEIGHTS_TORCH_FILE,
    WEIGHTS_UNEXPECTED,
};
use crate::diag::{
    codes::{IO_READ, IO_WRITE},
    Diagnostic,
};

/// A problem with weights, named by tensor where there is one.
#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("cannot read the weights file: {0}")]
    Read(std::io::Error),
    #[error("cannot write the weights file: {0}")]
    Write(std::io::Error),
    /// Not a safetensors file, or its header lies (offsets past the end, overlaps, bad JSON).
    #[error("not a valid safetensors file: {0}")]
    Format(String),
    /// Another framework's weights file (Keras HDF5 or `.keras`, PyTorch), named by its bytes.
    #[error("the weights file is {}, not a safetensors file", .0.describe())]
    Foreign(Foreign),
    #[error("tensor `{name}` is missing (expected f32{shape:?})")]
    Missing { name: String, shape: Vec<usize> },
    #[error("tensor `{name}` is not a parameter of this model")]
    Unexpected { name: String },
    #[error("tensor `{name}` has dtype {found}, expected F32")]
    DType { name: String, found: String },
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error(
        "tensor `{name}` holds {count} NaN or infinite value(s), the first at flat index {first}"
    )]
    NonFinite {
        name: String,
        count: usize,
        first: usize,
    },
    /// The weights do not fit the plan's parameter table (a derived recipe that does not agree
    /// with its sources, weights made for another plan).
    #[error("weights do not fit the plan: {0}")]
    PlanMismatch(String),
    /// Fresh weights for a plan whose parameters need more bytes than the limit (`None`: more
    /// than 2^64), refused before allocating.
    #[error("the plan's parameters need {} bytes; the limit for fresh weights is {limit} bytes", .bytes.map_or_else(|| "more than 2^64".to_string(), |b| b.to_string()))]
    TooLarge { bytes: Option<u64>, limit: u64 },
}

impl WeightsError {
    /// The diagnostic for this problem, located in the weights file at `path`.
    pub fn to_diagnostic(&self, path: &str) -> Diagnostic {
        let code = match self {
            WeightsError::Read(_) => IO_READ,
            WeightsError::Write(_) => IO_WRITE,
            WeightsError::Format(_)
            | WeightsError::Foreign(Foreign::NumpyArchive | Foreign::Zip) => WEIGHTS_FORMAT,
            WeightsError::Foreign(Foreign::KerasHdf5 | Foreign::KerasArchive) => WEIGHTS_KERAS_FILE,
            WeightsError::Foreign(Foreign::TorchArchive | Foreign::Pickle) => WEIGHTS_TORCH_FILE,
            WeightsError::Missing { .. } => WEIGHTS_MISSING,
            WeightsError::Unexpected { .. } => WEIGHTS_UNEXPECTED,
            WeightsError::DType { .. } => WEIGHTS_DTYPE,
            WeightsError::Shape { .. } => WEIGHTS_SHAPE,
            WeightsError::NonFinite { .. } => WEIGHTS_NON_FINITE,
            WeightsError::PlanMismatch(_) => WEIGHTS_PLAN_MISMATCH,
            WeightsError::TooLarge { .. } => WEIGHTS_TOO_LARGE,
        };
        let d = Diagnostic::error(code, self.to_string()).at_external(path, 0, 0);
        match self {
            WeightsError::Missing { .. } => {
                d.help("save the weights of the model this plan was compiled from")
            }
            WeightsError::Unexpected { .. } => {
                d.note("weight files hold one tensor per stored parameter, named LAYER.PARAM")
            }
            WeightsError::DType { .. } => d.help("convert the tensor to float32"),
            WeightsError::Shape { .. } => d.note("tensors use Keras layouts"),
            WeightsError::NonFinite { .. } => {
                d.help("the weights were saved after training diverged; use an earlier checkpoint")
            }
            WeightsError::TooLarge { .. } => d
                .note("the plan file declares every parameter's shape; nothing else bounds them")
                .help("run the plan with trained weights (`--weights W.safetensors`)"),
            WeightsError::Foreign(kind) => foreign_help(d, *kind, path),
            _ => d,
        }
    }
}

/// The note and help of a weights file of another framework: the converter command for it.
fn foreign_help(d: Diagnostic, kind: Foreign, path: &str) -> Diagnostic {
    let d = d.note(
        "modelc reads safetensors files: one f32 tensor per parameter, named LAYER.PARAM \
         (`modelc inspect SPEC.model` lists them), in Keras layouts",
    );
    let Some(converter) = kind.converter() else {
        return if kind == Foreign::NumpyArchive {
            d.help(
                "write the arrays with `safetensors.numpy.save_file`, named after the spec's \
                 parameters",
            )
        } else {
            d
        };
    };
    let out = Path::new(path).with_extension("safetensors");
    let out = if out == Path::new(path) {
        "converted.safetensors".to_string()
    } else {
        out.display().to_string()
    };
    let what = match kind {
        Foreign::TorchArchive | Foreign::Pickle => "convert its state_dict",
        _ => "convert it",
    };
    d.help(format!(
        "{what}: `python3 {converter} {path} --spec SPEC.model -o {out}`"
    ))
}

/// Converts problems into diagnostics located in `path`.
pub fn to_diagnostics(errors: &[WeightsError], path: &Path) -> Vec<Diagnostic> {
    let p = path.display().to_string();
    errors.iter().map(|e| e.to_diagnostic(&p)).collect()
}
