//! `modelc export FILE.model --to pytorch -o DIR`: a spec as a PyTorch training package.
//!
//! Input: a checked model, its train block and data pipeline, the spec's text (for the line
//! comments) and where the spec is. Output: the package's files as (name, bytes): `model.py`
//! ([`model_py`]: one `nn.Module` line and one forward line per layer, each from its op
//! family's `to_pytorch` in `ops`, weights converted to and from modelc's safetensors),
//! `data.py` ([`data_py`]: the pipeline as a `Dataset` with modelc's split, shuffle and
//! augmentation streams), `train.py` ([`train_py`]: the train block under DDP), `README.md`,
//! and for a synthetic source its samples as `.npy` files made by modelc's own generator.
//!
//! Invariants: the same inputs give the same bytes (golden-tested); the Python parts that do
//! not depend on the spec are the `*.py` files beside this module, included verbatim; a layer
//! or data step with no PyTorch form is a [`TorchError`] at its span, never a package that
//! computes something else.

mod data_py;
mod model_py;
mod train_py;

use crate::check::{CheckedModel, CheckedTrain};
use crate::data::PipelineSpec;
use crate::diag::{codes, Diagnostic, FileId, Span};
use std::path::Path;

/// What the package is made from.
pub struct TorchInputs<'a> {
    pub model: &'a CheckedModel,
    pub train: &'a CheckedTrain,
    pub pipeline: &'a PipelineSpec,
    /// The spec's text (layer spans index it).
    pub spec_text: &'a str,
    /// The spec's file name as shown in comments (`seed_cnn.model`).
    pub spec_name: &'a str,
    /// The spec's folder as given on the command line: the default data root.
    pub spec_dir: &'a Path,
    pub file: FileId,
}

/// A layer or data step with no PyTorch form.
#[derive(Clone, Debug, PartialEq)]
pub struct TorchError {
    /// `layer `conv2d_1`` or `data step `window``.
    pub what: String,
    pub why: String,
    pub span: Span,
}

impl TorchError {
    /// E1201 at the layer or step.
    pub fn to_diagnostic(&self, file: FileId) -> Diagnostic {
        Diagnostic::error(
            codes::TORCH_UNSUPPORTED,
            format!("{} has no PyTorch form", self.what),
        )
        .primary(file, self.span, "this has no PyTorch form")
        .note(format!("why: {}", self.why))
        .help("change it to a form the PyTorch export writes (`modelc explain E1201` lists them), then export again")
    }
}

/// The 1-based line of byte `at` and that line's text, trimmed.
pub(crate) fn line_of(text: &str, at: usize) -> (usize, String) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let rest = text.get(start..).unwrap_or("");
    let end = rest.find('\n').unwrap_or(rest.len());
    (line, rest.get(..end).unwrap_or("").trim().to_string())
}

/// A name safe as a Python identifier and `nn.Module` attribute.
pub(crate) fn py_name(name: &str) -> String {
    const RESERVED: &[&str] = &[
        "False",
        "None",
        "True",
        "and",
        "as",
        "assert",
        "async",
        "await",
        "break",
        "class",
        "continue",
        "def",
        "del",
        "elif",
        "else",
        "except",
        "finally",
        "for",
        "from",
        "global",
        "if",
        "import",
        "in",
        "is",
        "lambda",
        "nonlocal",
        "not",
        "or",
        "pass",
        "raise",
        "return",
        "try",
        "while",
        "with",
        "yield",
        "self",
        "torch",
        "nn",
        "F",
        "np",
        "forward",
        "training",
        "load_weights",
        "save_weights",
        "keras_init",
        "PARAMS",
        "INPUTS",
    ];
    if RESERVED.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// The package's files, in a fixed order.
pub fn export(inputs: &TorchInputs<'_>) -> Result<Vec<(String, Vec<u8>)>, Vec<TorchError>> {
    let model = model_py::render(inputs)?;
    let (data, mut extra) = data_py::render(inputs)?;
    let train = train_py::render(inputs)?;
    let readme = train_py::readme(inputs, !extra.is_empty());
    let mut files = vec![
        ("model.py".to_string(), model.into_bytes()),
        ("data.py".to_string(), data.into_bytes()),
        ("train.py".to_string(), train.into_bytes()),
        ("README.md".to_string(), readme.into_bytes()),
    ];
    files.append(&mut extra);
    Ok(files)
}
