//! IDX source (the MNIST file format), plain or gzip'd: an unsigned-byte images file
//! `[n, ...]` and optionally a labels file `[n]`.
//!
//! Header: two zero bytes, a type byte (0x08 = unsigned byte), the rank, then one big-endian
//! u32 per dimension. The file must hold exactly the product of the dimensions in data bytes.

use super::{check_budget, declared_or, read_checked, resolve, Head};
use crate::data::samples::{with_count, Features, Labels, Samples};
use crate::data::spec::IdxSource;
use crate::diag::codes::{DATA_COUNT_MISMATCH, DATA_EMPTY, DATA_IDX_MALFORMED, DATA_LABEL_RANGE};
use crate::diag::Diagnostic;
use ndarray::ArrayD;
use std::path::Path;

/// A parsed IDX file: its dimensions and unsigned-byte data.
pub(crate) struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// An IDX header: the dimensions, where the data starts and how many data bytes follow.
struct IdxHeader {
    dims: Vec<usize>,
    data_start: usize,
    count: usize,
}

/// Parses an IDX file's header from its first bytes; `Err` holds the reason and the byte
/// offset at fault.
fn parse_header(bytes: &[u8]) -> Result<IdxHeader, (String, usize)> {
    let head = bytes.get(..4).ok_or_else(|| {
        (
            "the file is shorter than the 4-byte idx magic number".to_string(),
            0,
        )
    })?;
    if head[0] != 0 || head[1] != 0 {
        return Err((
            format!(
                "wrong magic number {:02x} {:02x} {:02x} {:02x}: an idx file starts with 00 00",
                head[0], head[1], head[2], head[3]
            ),
            0,
        ));
    }
    if head[2] != 0x08 {
        return Err((
            format!(
                "idx element type 0x{:02x} is not supported (only 0x08, unsigned bytes)",
                head[2]
            ),
            2,
        ));
    }
    let rank = usize::from(head[3]);
    if rank == 0 {
        return Err(("idx rank is 0".to_string(), 3));
    }
    let data_start = 4 + 4 * rank;
    let dim_bytes = bytes.get(4..data_start).ok_or_else(|| {
        (
            format!("the file ends inside its header ({rank} dimensions)"),
            bytes.len(),
        )
    })?;
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| {
            (
                format!("the header's sizes {dims:?} multiply past any file size"),
                4,
            )
        })?;
    Ok(IdxHeader {
        dims,
        data_start,
        count,
    })
}

/// Parses the bytes of an IDX file; `Err` holds the reason and the byte offset at fault.
pub(crate) fn parse_idx(bytes: &[u8]) -> Result<Idx, (String, usize)> {
    let IdxHeader {
        dims,
        data_start: dims_end,
        count,
    } = parse_header(bytes)?;
    let data = &bytes[dims_end..];
    if data.len() != count {
        return Err((
            format!(
                "the header {dims:?} describes {count} data bytes, but the file has {}{}",
                data.len(),
                if data.len() < count {
                    " (truncated)"
                } else {
                    ""
                }
            ),
            dims_end,
        ));
    }
    Ok(Idx {
        dims,
        data: data.to_vec(),
    })
}

/// Reads an IDX file, judging its header before the data: a file that is not IDX is refused
/// after its first bytes, and no more is read than its header declares (and one byte).
fn read_idx(path: &Path) -> Result<Idx, Diagnostic> {
    let shown = path.display().to_string();
    let bytes = read_checked(path, |head| match parse_header(head) {
        Ok(h) => Head::Length((h.data_start as u64).saturating_add(h.count as u64)),
        Err(e) => Head::Refuse(idx_malformed(&shown, e)),
    })?;
    parse_idx_file(&bytes, &shown)
}

fn idx_malformed(shown: &str, (msg, offset): (String, usize)) -> Diagnostic {
    Diagnostic::error(DATA_IDX_MALFORMED, format!("{shown}: {msg}"))
        .at_external(shown.to_string(), 0, 0)
        .note(format!("at byte offset {offset}"))
}

fn parse_idx_file(bytes: &[u8], shown: &str) -> Result<Idx, Diagnostic> {
    parse_idx(bytes).map_err(|e| idx_malformed(shown, e))
}

pub(super) fn load(spec: &IdxSource, base_dir: &Path) -> Result<Samples, Diagnostic> {
    let images_path = resolve(base_dir, &spec.images);
    let images = read_idx(&images_path)?;
    let labels = match &spec.labels {
        None => None,
        Some(p) => {
            let labels_path = resolve(base_dir, p);
            Some((read_idx(&labels_path)?, labels_path.display().to_string()))
        }
    };
    assemble(spec, &images, &images_path.display().to_string(), labels)
}

/// Reads the (already gunzipped) bytes of an images file and, when the spec names one, a
/// labels file; the names in diagnostics are the spec's paths.
pub(super) fn from_bytes(
    spec: &IdxSource,
    images: &[u8],
    labels: Option<&[u8]>,
) -> Result<Samples, Diagnostic> {
    let images = parse_idx_file(images, &spec.images)?;
    let labels = match (&spec.labels, labels) {
        (Some(p), Some(bytes)) => Some((parse_idx_file(bytes, p)?, p.clone())),
        _ => None,
    };
    assemble(spec, &images, &spec.images, labels)
}

/// Samples from a parsed images file and its labels file (with its name for diagnostics).
fn assemble(
    spec: &IdxSource,
    images: &Idx,
    shown: &str,
    labels: Option<(Idx, String)>,
) -> Result<Samples, Diagnostic> {
    let shown = shown.to_string();
    let n = images.dims[0];
    if n == 0 {
        return Err(
            Diagnostic::error(DATA_EMPTY, format!("{shown} holds no samples")).at_external(
                shown.clone(),
                0,
                0,
            ),
        );
    }
    check_budget(Some(images.data.len()), &shown)?;
    let found: Vec<usize> = if images.dims.len() == 1 {
        vec![1]
    } else {
        images.dims[1..].to_vec()
    };
    let sample = declared_or(spec.shape.as_ref(), &found, &shown)?;
    let values: Vec<f32> = images.data.iter().map(|&b| f32::from(b)).collect();
    let features = ArrayD::from_shape_vec(with_count(n, &sample), values).map_err(|e| {
        Diagnostic::error(DATA_IDX_MALFORMED, format!("{shown}: {e}")).at_external(
            shown.clone(),
            0,
            0,
        )
    })?;
    let labels = match labels {
        None => Labels::None,
        Some((labels, lshown)) => {
            if labels.dims.len() != 1 {
                return Err(Diagnostic::error(
                    DATA_IDX_MALFORMED,
                    format!(
                        "{lshown}: a labels file has rank 1, found dimensions {:?}",
                        labels.dims
                    ),
                )
                .at_external(lshown, 0, 0));
            }
            if labels.dims[0] != n {
                return Err(Diagnostic::error(
                    DATA_COUNT_MISMATCH,
                    format!(
                        "{lshown} has {} labels but {shown} has {n} images",
                        labels.dims[0]
                    ),
                )
                .at_external(lshown, 0, 0));
            }
            if let Some(c) = spec.classes {
                if let Some((i, &l)) = labels
                    .data
                    .iter()
                    .enumerate()
                    .find(|(_, &l)| u32::from(l) >= c)
                {
                    return Err(Diagnostic::error(
                        DATA_LABEL_RANGE,
                        format!(
                            "label {l} of sample {i} in {lshown} is outside the {c} classes 0..{}",
                            c - 1
                        ),
                    )
                    .at_external(lshown, i + 1, 0));
                }
            }
            Labels::Class(labels.data.iter().map(|&l| i64::from(l)).collect())
        }
    };
    Ok(Samples {
        features: Features::F32(features),
        labels,
    })
}
