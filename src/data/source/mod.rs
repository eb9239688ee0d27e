//! Sources: reading data files (CSV, IDX, NPY) and running the synthetic generators.
//!
//! Input: a [`SourceSpec`] and the folder of the spec file (relative paths resolve against
//! it). Output: [`Samples`] whose per-sample shape is the declared one, or the first problem
//! found as a [`Diagnostic`]: E06xx with the file, row and column for problems in data
//! (E0622 for a gzip'd file whose stream is corrupt), E0900 (exit status 2) when a file cannot
//! be read at all.

mod csv_file;
mod idx;
mod npy_file;
mod synthetic;

use super::samples::{Samples, MEMORY_BUDGET_BYTES};
use super::spec::{SourceKind, SourceSpec};
use crate::diag::codes::{DATA_GZIP_CORRUPT, DATA_SHAPE_MISMATCH, DATA_TOO_LARGE, IO_READ};
use crate::diag::Diagnostic;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Loads every sample of a source.
pub fn load(spec: &SourceSpec, base_dir: &Path) -> Result<Samples, Diagnostic> {
    match &spec.kind {
        SourceKind::Csv(c) => csv_file::load(c, &resolve(base_dir, &c.path)),
        SourceKind::Idx(i) => idx::load(i, base_dir),
        SourceKind::Npy(n) => npy_file::load(n, base_dir),
        SourceKind::Regression(r) => synthetic::regression(r),
        SourceKind::Tokens(t) => synthetic::tokens(t),
        SourceKind::Sine(s) => synthetic::sine(s),
    }
}

/// Loads a file source from bytes instead of files: `features` is the CSV, images or features
/// file as stored (gzip'd or not), `labels` the labels file when the spec names one. The CLI
/// reads files and runs the same readers; this entry point lets fuzzers and tests skip the disk.
/// Diagnostics name the spec's paths. A synthetic source ignores the bytes.
pub fn load_bytes(
    spec: &SourceSpec,
    features: &[u8],
    labels: Option<&[u8]>,
) -> Result<Samples, Diagnostic> {
    let unzip = |bytes: &[u8], shown: &str| gunzip_if_gzip(bytes.to_vec(), shown);
    match &spec.kind {
        SourceKind::Csv(c) => csv_file::from_bytes(c, &unzip(features, &c.path)?, &c.path),
        SourceKind::Idx(i) => {
            let labels = match (&i.labels, labels) {
                (Some(p), Some(b)) => Some(unzip(b, p)?),
                _ => None,
            };
            idx::from_bytes(i, &unzip(features, &i.images)?, labels.as_deref())
        }
        SourceKind::Npy(n) => {
            let labels = match (&n.labels, labels) {
                (Some(p), Some(b)) => Some(unzip(b, p)?),
                _ => None,
            };
            npy_file::from_bytes(n, &unzip(features, &n.features)?, labels.as_deref())
        }
        SourceKind::Regression(_) | SourceKind::Tokens(_) | SourceKind::Sine(_) => {
            load(spec, Path::new("."))
        }
    }
}

/// `path` relative to the spec's folder (absolute paths are kept).
pub fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    base_dir.join(path)
}

/// What a reader can tell from the first [`HEAD_BYTES`] bytes of a file (after gunzipping).
pub(crate) enum Head {
    /// Not this format: refused before anything more is read.
    Refuse(Diagnostic),
    /// Read on, up to the memory budget.
    ReadAll,
    /// The file's own header gives its length in bytes: read no more than that (and one byte
    /// more, for the format's reader to refuse trailing data).
    Length(u64),
}

/// How much of a file [`read_checked`] shows its judge first: an IDX header at its longest.
pub(crate) const HEAD_BYTES: u64 = 4 + 4 * 255;

/// The whole file, gunzipped as it is read when it starts with the gzip magic; refuses folders
/// and files (or decompressed streams) larger than the memory budget.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    read_checked(path, |_| Head::ReadAll)
}

/// The whole file as [`read_bytes`] reads it, but `judge` sees its first bytes before more is
/// read, so a file of another kind (or `/dev/zero`) is refused at once and a file whose header
/// gives its size is read only that far. Memory never holds more than the decompressed bytes
/// kept, bounded by the budget while reading.
pub(crate) fn read_checked(
    path: &Path,
    judge: impl Fn(&[u8]) -> Head,
) -> Result<Vec<u8>, Diagnostic> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| {
        Diagnostic::error(IO_READ, format!("cannot read {shown}: {e}")).at_external(
            shown.clone(),
            0,
            0,
        )
    };
    if path.is_dir() {
        return Err(Diagnostic::error(
            IO_READ,
            format!("cannot read {shown}: it is a folder, not a file"),
        )
        .at_external(shown.clone(), 0, 0));
    }
    let mut file = std::fs::File::open(path).map_err(io)?;
    let on_disk = file
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map_or(0, |m| m.len());
    let mut magic = Vec::with_capacity(2);
    (&mut file).take(2).read_to_end(&mut magic).map_err(io)?;
    let gzip = magic == [0x1f, 0x8b];
    let restart = std::io::Cursor::new(magic).chain(std::io::BufReader::new(file));
    let mut stream: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(restart))
    } else {
        Box::new(restart)
    };
    let failed = |e: std::io::Error| {
        let content = matches!(
            e.kind(),
            std::io::ErrorKind::InvalidData
                | std::io::ErrorKind::InvalidInput
                | std::io::ErrorKind::UnexpectedEof
        );
        if gzip && content {
            gzip_corrupt(&shown, &e)
        } else {
            io(e)
        }
    };
    let mut bytes = Vec::new();
    (&mut stream)
        .take(HEAD_BYTES)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    let budget = MEMORY_BUDGET_BYTES as u64;
    let limit = match judge(&bytes) {
        Head::Refuse(d) => return Err(d),
        Head::ReadAll => budget + 1,
        Head::Length(n) if n > budget => return Err(too_large(&shown)),
        Head::Length(n) => {
            // A plain file that holds the declared bytes gets them in one allocation of the
            // right size (not a doubling vector's); others grow as their bytes arrive.
            if !gzip && on_disk >= n {
                let more =
                    usize::try_from(n.saturating_sub(bytes.len() as u64)).unwrap_or(usize::MAX);
                bytes
                    .try_reserve_exact(more)
                    .map_err(|_| too_large(&shown))?;
            }
            n + 1
        }
    };
    let rest = limit.saturating_sub(bytes.len() as u64);
    stream.take(rest).read_to_end(&mut bytes).map_err(failed)?;
    if bytes.len() as u64 > budget {
        return Err(too_large(&shown));
    }
    Ok(bytes)
}

/// A gzip'd file whose stream is corrupt: the file was read, so this is a problem in the
/// user's data (exit status 1), not an I/O error.
fn gzip_corrupt(shown: &str, e: &std::io::Error) -> Diagnostic {
    Diagnostic::error(
        DATA_GZIP_CORRUPT,
        format!("{shown} starts like a gzip file but its stream is corrupt: {e}"),
    )
    .at_external(shown.to_string(), 0, 0)
    .help("compress the file again (`gzip -k FILE`), or give the uncompressed file")
}

/// `raw` itself, or its gunzipped contents when it starts with the gzip magic; refuses data
/// (or decompressed streams) larger than the memory budget.
pub(crate) fn gunzip_if_gzip(raw: Vec<u8>, shown: &str) -> Result<Vec<u8>, Diagnostic> {
    let limit = MEMORY_BUDGET_BYTES as u64 + 1;
    let mut raw = raw;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|e| gzip_corrupt(shown, &e))?;
        raw = out;
    }
    if raw.len() as u64 >= limit {
        return Err(too_large(shown));
    }
    Ok(raw)
}

pub(crate) fn too_large(path: &str) -> Diagnostic {
    Diagnostic::error(
        DATA_TOO_LARGE,
        format!(
            "{path} needs more than the {} GiB data budget",
            MEMORY_BUDGET_BYTES >> 30
        ),
    )
    .at_external(path.to_string(), 0, 0)
}

/// Checks that `values` elements of f32 fit the memory budget.
pub(crate) fn check_budget(values: Option<usize>, what: &str) -> Result<usize, Diagnostic> {
    values
        .filter(|v| v.checked_mul(4).is_some_and(|b| b <= MEMORY_BUDGET_BYTES))
        .ok_or_else(|| too_large(what))
}

/// The per-sample shape to use: the declared one (same element count as the file's) or the
/// file's own.
pub(crate) fn declared_or(
    declared: Option<&Vec<usize>>,
    found: &[usize],
    path: &str,
) -> Result<Vec<usize>, Diagnostic> {
    let count = |s: &[usize]| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match declared {
        None => Ok(found.to_vec()),
        Some(d) if count(d) == count(found) => Ok(d.clone()),
        Some(d) => Err(Diagnostic::error(
            DATA_SHAPE_MISMATCH,
            format!(
                "the samples in {path} have shape {found:?}, which does not fit the declared shape {d:?}"
            ),
        )
        .at_external(path.to_string(), 0, 0)),
    }
}

#[cfg(test)]
mod tests;
