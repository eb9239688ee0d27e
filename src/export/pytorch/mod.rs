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
use std::path::{Component, Path, PathBuf};

/// What the package is made from.
pub struct TorchInputs<'a> {
    pub model: &'a CheckedModel,
    pub train: &'a CheckedTrain,
    pub pipeline: &'a PipelineSpec,
    /// The spec's text (layer spans index it).
    pub spec_text: &'a str,
    /// The spec's file name as shown in comments (`seed_cnn.model`).
    pub spec_name: &'a str,
    /// The spec's folder as given on the command line (where a synthetic source is made).
    pub spec_dir: &'a Path,
    /// The default data root as `data.py` records it ([`data_root`]).
    pub data_root: &'a DataRoot,
    pub file: FileId,
}

/// Where `data.py` looks for the spec's data files by default: the spec's folder relative to
/// the package's folder when the two share a folder below the file-system root (the package
/// then runs from anywhere, and moves together with the data), else its absolute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataRoot {
    /// `/`-separated, from the package's folder (`..`, `../specs`, `.`).
    Relative(String),
    Absolute(String),
}

/// A path made absolute against the working folder, with `.` and `..` resolved lexically
/// after the longest existing prefix is canonicalized (symbolic links resolved there).
fn absolute(path: &Path) -> PathBuf {
    let joined = std::env::current_dir().map_or_else(|_| path.to_path_buf(), |d| d.join(path));
    let mut existing = joined.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            existing = c;
            break;
        }
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = PathBuf::new();
    for part in existing
        .components()
        .chain(rest.iter().rev().map(|n| Component::Normal(n.as_os_str())))
    {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The data root of a package written to `package_dir` for a spec in `spec_dir`.
pub fn data_root(spec_dir: &Path, package_dir: &Path) -> DataRoot {
    let spec = absolute(spec_dir);
    let package = absolute(package_dir);
    relative_root(&spec, &package)
}

/// [`data_root`] of two absolute, normalized paths.
fn relative_root(spec: &Path, package: &Path) -> DataRoot {
    let a: Vec<Component> = spec.components().collect();
    let b: Vec<Component> = package.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let below_root = a
        .get(..common)
        .unwrap_or(&[])
        .iter()
        .any(|c| matches!(c, Component::Normal(_)));
    if !below_root {
        return DataRoot::Absolute(spec.display().to_string());
    }
    let mut parts: Vec<String> = vec!["..".to_string(); b.len() - common];
    parts.extend(
        a.get(common..)
            .unwrap_or(&[])
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    DataRoot::Relative(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
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
    if let Some(group) = inputs.pipeline.inputs.first() {
        return Err(vec![TorchError {
            what: format!("data block `{}` with input groups", inputs.pipeline.name),
            why: format!(
                "the package's data.py and train.py feed one input tensor; this pipeline feeds {} (`{}` first)",
                inputs.pipeline.inputs.len(),
                group.name
            ),
            span: group.span,
        }]);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_root_is_relative_below_a_shared_folder_else_absolute() {
        let rel = |s: &str, p: &str| relative_root(Path::new(s), Path::new(p));
        assert_eq!(
            rel("/work/repo/specs", "/work/repo/out/pkg"),
            DataRoot::Relative("../../specs".into())
        );
        assert_eq!(
            rel("/work/repo", "/work/repo/pkg"),
            DataRoot::Relative("..".into())
        );
        assert_eq!(
            rel("/work/repo/specs", "/work/repo/specs"),
            DataRoot::Relative(".".into())
        );
        assert_eq!(
            rel("/work/repo/specs", "/work/repo/specs/pkg/a"),
            DataRoot::Relative("../..".into())
        );
        assert_eq!(
            rel("/data/specs", "/tmp/pkg"),
            DataRoot::Absolute("/data/specs".into())
        );
    }
}
