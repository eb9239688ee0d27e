//! NPY source: a features file `[n, ...]` and optionally a labels file `[n]` (class ids) or
//! `[n]`/`[n, k]` (regression targets).

use super::{check_budget, declared_or, read_checked, resolve, Head};
use crate::data::npy::{read_npy, NpyArray, MAGIC as NPY_MAGIC};
use crate::data::samples::{with_count, Features, Labels, Samples};
use crate::data::source::csv_file::check_class;
use crate::data::spec::{LabelRead, NpySource};
use crate::diag::codes::{
    DATA_COUNT_MISMATCH, DATA_EMPTY, DATA_LABEL_RANGE, DATA_NON_FINITE, DATA_NPY_MALFORMED,
};
use crate::diag::Diagnostic;
use ndarray::ArrayD;
use std::path::Path;

/// Reads an NPY file; a file that does not start with NPY's magic is refused after its first
/// bytes, before the rest is read.
fn read(path: &Path) -> Result<NpyArray, Diagnostic> {
    let shown = path.display().to_string();
    let bytes = read_checked(path, |head| {
        if head.starts_with(NPY_MAGIC) {
            Head::ReadAll
        } else {
            // The reader names what is wrong with a start that is not NPY's.
            Head::Refuse(parse(head, &shown).err().unwrap_or_else(|| {
                Diagnostic::error(DATA_NPY_MALFORMED, format!("{shown}: not an NPY file"))
            }))
        }
    })?;
    parse(&bytes, &shown)
}

fn parse(bytes: &[u8], shown: &str) -> Result<NpyArray, Diagnostic> {
    read_npy(bytes).map_err(|e| {
        Diagnostic::error(DATA_NPY_MALFORMED, format!("{shown}: {e}")).at_external(
            shown.to_string(),
            0,
            0,
        )
    })
}

/// The first non-finite value's flat index, if any.
fn non_finite(values: &[f32]) -> Option<usize> {
    values.iter().position(|v| !v.is_finite())
}

pub(super) fn load(spec: &NpySource, base_dir: &Path) -> Result<Samples, Diagnostic> {
    let path = resolve(base_dir, &spec.features);
    let array = read(&path)?;
    let labels = match &spec.labels {
        None => None,
        Some(p) => {
            let lpath = resolve(base_dir, p);
            Some((read(&lpath)?, lpath.display().to_string()))
        }
    };
    assemble(spec, &array, &path.display().to_string(), labels)
}

/// Reads the (already gunzipped) bytes of a features file and, when the spec names one, a
/// labels file; the names in diagnostics are the spec's paths.
pub(super) fn from_bytes(
    spec: &NpySource,
    features: &[u8],
    labels: Option<&[u8]>,
) -> Result<Samples, Diagnostic> {
    let array = parse(features, &spec.features)?;
    let labels = match (&spec.labels, labels) {
        (Some(p), Some(bytes)) => Some((parse(bytes, p)?, p.clone())),
        _ => None,
    };
    assemble(spec, &array, &spec.features, labels)
}

/// Samples from a parsed features array and its labels array (with its name for diagnostics).
fn assemble(
    spec: &NpySource,
    array: &NpyArray,
    shown: &str,
    labels: Option<(NpyArray, String)>,
) -> Result<Samples, Diagnostic> {
    let shown = shown.to_string();
    let n = array.shape.first().copied().unwrap_or(0);
    if n == 0 {
        return Err(
            Diagnostic::error(DATA_EMPTY, format!("{shown} holds no samples")).at_external(
                shown.clone(),
                0,
                0,
            ),
        );
    }
    let values = array.to_f32();
    check_budget(Some(values.len()), &shown)?;
    let found: Vec<usize> = if array.shape.len() == 1 {
        vec![1]
    } else {
        array.shape[1..].to_vec()
    };
    let sample = declared_or(spec.shape.as_ref(), &found, &shown)?;
    if let Some(i) = non_finite(&values) {
        let per = values.len() / n;
        return Err(Diagnostic::error(
            DATA_NON_FINITE,
            format!("sample {} of {shown} holds {}", i / per.max(1), values[i]),
        )
        .at_external(shown, i / per.max(1) + 1, i % per.max(1) + 1));
    }
    let features = ArrayD::from_shape_vec(with_count(n, &sample), values).map_err(|e| {
        Diagnostic::error(DATA_NPY_MALFORMED, format!("{shown}: {e}")).at_external(
            shown.clone(),
            0,
            0,
        )
    })?;
    let labels = match labels {
        None => Labels::None,
        Some((labels, lshown)) => {
            let ln = labels.shape.first().copied().unwrap_or(0);
            if ln != n {
                return Err(Diagnostic::error(
                    DATA_COUNT_MISMATCH,
                    format!("{lshown} has {ln} labels but {shown} has {n} samples"),
                )
                .at_external(lshown, 0, 0));
            }
            let values = labels.to_f64();
            match spec.label_read {
                LabelRead::Class { classes } => {
                    if labels.shape.len() != 1 {
                        return Err(Diagnostic::error(
                            DATA_NPY_MALFORMED,
                            format!(
                                "{lshown}: class labels have shape [n], found {:?}",
                                labels.shape
                            ),
                        )
                        .at_external(lshown, 0, 0));
                    }
                    for (i, &v) in values.iter().enumerate() {
                        check_class(v, classes, i as u64 + 1).map_err(|m| {
                            Diagnostic::error(DATA_LABEL_RANGE, format!("{m} of {lshown}"))
                                .at_external(lshown.clone(), i + 1, 0)
                        })?;
                    }
                    Labels::Class(values.iter().map(|&v| v as i64).collect())
                }
                LabelRead::Value => {
                    let per = values.len() / n;
                    let f: Vec<f32> = values.iter().map(|&v| v as f32).collect();
                    if let Some(i) = non_finite(&f) {
                        return Err(Diagnostic::error(
                            DATA_NON_FINITE,
                            format!("label of sample {} in {lshown} is {}", i / per.max(1), f[i]),
                        )
                        .at_external(lshown, i / per.max(1) + 1, 0));
                    }
                    Labels::Values(ArrayD::from_shape_vec(with_count(n, &[per]), f).map_err(
                        |e| {
                            Diagnostic::error(DATA_NPY_MALFORMED, format!("{lshown}: {e}"))
                                .at_external(lshown.clone(), 0, 0)
                        },
                    )?)
                }
            }
        }
    };
    Ok(Samples {
        features: Features::F32(features),
        labels,
    })
}
