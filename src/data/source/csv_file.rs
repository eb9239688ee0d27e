//! CSV source: feature and label columns by header name or 0-based index.
//!
//! Input: a CSV file (header row or not). Output: `f32[n, features]` and class or value labels
//! (one label set per label column; several, one per model output, as `Labels::Outputs`).
//! Every cell must parse as a finite number; problems name the file, row (1-based line) and
//! column (1-based cell), with the text found.

use super::{check_budget, Head};
use crate::data::budget;
use crate::data::samples::{with_count, Features, Labels, Samples};
use crate::data::spec::{ColumnRef, CsvSource, FeatureColumns, LabelRead};
use crate::diag::codes::{
    DATA_COLUMN_NOT_FOUND, DATA_CSV_RAGGED, DATA_EMPTY, DATA_LABEL_RANGE, DATA_NON_FINITE,
    DATA_NOT_A_NUMBER, DATA_SHAPE_MISMATCH,
};
use crate::diag::suggest::{capped_list, help_or_list};
use crate::diag::{Code, Diagnostic};
use ndarray::{Array2, ArrayD};
use std::path::Path;

/// Reads a CSV file; a file whose first bytes hold a NUL (a binary file, a sparse file's hole,
/// `/dev/zero`) is refused before the rest is read: CSV is text.
pub(super) fn load(spec: &CsvSource, path: &Path) -> Result<Samples, Diagnostic> {
    let shown = path.display().to_string();
    let bytes = super::read_checked(path, |head| match head.iter().position(|&b| b == 0) {
        Some(at) => Head::Refuse(not_text(&shown, at)),
        None => Head::ReadAll,
    })?;
    from_bytes(spec, &bytes, &shown)
}

fn not_text(shown: &str, at: usize) -> Diagnostic {
    Diagnostic::error(
        DATA_NOT_A_NUMBER,
        format!("{shown} is not a CSV file: byte {at} is NUL, and CSV is text"),
    )
    .at_external(shown.to_string(), 0, 0)
    .help("give a CSV file (comma-separated text), or declare the source as `idx` or `npy`")
}

/// Reads the (already gunzipped) bytes of a CSV file; `shown` names it in diagnostics.
pub(super) fn from_bytes(
    spec: &CsvSource,
    bytes: &[u8],
    shown: &str,
) -> Result<Samples, Diagnostic> {
    let shown = shown.to_string();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut records = reader.records();
    let bad = |code, line: u64, col: usize, msg: String| problem(&shown, code, line, col, msg);
    let csv_err = |e: csv::Error| {
        let line = e.position().map_or(0, csv::Position::line);
        bad(
            DATA_NOT_A_NUMBER,
            line,
            0,
            format!("{shown} is not valid csv: {e}"),
        )
    };
    let Some(first) = records.next().transpose().map_err(csv_err)? else {
        return Err(bad(DATA_EMPTY, 0, 0, format!("{shown} is empty")));
    };
    let width = first.len();
    let header: Option<Vec<String>> = spec
        .header
        .then(|| first.iter().map(str::to_string).collect());
    let (label_cols, feature_cols) = columns(spec, header.as_deref(), width, &shown)?;
    // Each label column with how it is read: the first is `label`, then `more_labels`.
    let reads: Vec<LabelRead> = std::iter::once(spec.label_read)
        .chain(spec.more_labels.iter().map(|l| l.read))
        .collect();
    let mut values: Vec<f32> = Vec::new();
    let mut labels: Vec<Vec<f64>> = vec![Vec::new(); label_cols.len()];
    let mut rows = 0usize;
    let first_data = if header.is_none() {
        Some(Ok(first.clone()))
    } else {
        None
    };
    for record in first_data.into_iter().chain(records) {
        let record = record.map_err(csv_err)?;
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != width {
            return Err(bad(
                DATA_CSV_RAGGED,
                line,
                0,
                format!(
                    "row {line} of {shown} has {} cells, but the {} has {width}",
                    record.len(),
                    if header.is_some() {
                        "header"
                    } else {
                        "first row"
                    }
                ),
            ));
        }
        let cell = |i: usize| cell(&record, i, line, &shown);
        for &c in &feature_cols {
            values.push(cell(c)? as f32);
        }
        for ((&c, &read), out) in label_cols.iter().zip(&reads).zip(&mut labels) {
            let v = cell(c)?;
            if let LabelRead::Class { classes } = read {
                check_class(v, classes, line).map_err(|m| {
                    bad(
                        DATA_LABEL_RANGE,
                        line,
                        c + 1,
                        format!("{m} (row {line} of {shown})"),
                    )
                })?;
            }
            out.push(v);
        }
        rows += 1;
        check_budget(Some(values.len()), &shown)?;
        // Each label set is an array of its own: `rows` class ids (i64) or values.
        if !label_cols.is_empty() && !budget::within(budget::bytes(rows, &[], 8)) {
            return Err(super::too_large(&shown));
        }
    }
    if rows == 0 {
        return Err(bad(
            DATA_EMPTY,
            1,
            0,
            format!("{shown} has a header row but no data rows"),
        ));
    }
    let features = ArrayD::from_shape_vec(with_count(rows, &[feature_cols.len()]), values)
        .map_err(|e| bad(DATA_SHAPE_MISMATCH, 0, 0, e.to_string()))?;
    let mut sets = Vec::with_capacity(labels.len());
    for (column, read) in labels.into_iter().zip(reads) {
        sets.push(match read {
            LabelRead::Class { .. } => Labels::Class(column.iter().map(|&v| v as i64).collect()),
            LabelRead::Value => Labels::Values(
                Array2::from_shape_vec((rows, 1), column.iter().map(|&v| v as f32).collect())
                    .map_err(|e| bad(DATA_SHAPE_MISMATCH, 0, 0, e.to_string()))?
                    .into_dyn(),
            ),
        });
    }
    let labels = match sets.len() {
        0 => Labels::None,
        1 => sets.pop().unwrap_or(Labels::None),
        _ => Labels::Outputs(sets),
    };
    Ok(Samples {
        features: Features::F32(features),
        labels,
    })
}

/// A data problem at `line`, `col` (1-based; 0 for none) of the file shown as `shown`.
fn problem(shown: &str, code: Code, line: u64, col: usize, msg: String) -> Diagnostic {
    Diagnostic::error(code, msg).at_external(shown.to_string(), line as usize, col)
}

/// The label columns (none, one, or one per model output) and the feature columns, as 0-based
/// indices into rows of `width` cells; names are looked up in `header`.
fn columns(
    spec: &CsvSource,
    header: Option<&[String]>,
    width: usize,
    shown: &str,
) -> Result<(Vec<usize>, Vec<usize>), Diagnostic> {
    let resolve = |c: &ColumnRef, what: &str| resolve(c, what, header, width, shown);
    let label_cols: Vec<usize> = spec
        .label
        .iter()
        .chain(spec.more_labels.iter().map(|l| &l.column))
        .map(|c| resolve(c, "label"))
        .collect::<Result<_, _>>()?;
    let feature_cols: Vec<usize> = match &spec.features {
        FeatureColumns::Listed(cols) => cols
            .iter()
            .map(|c| resolve(c, "feature"))
            .collect::<Result<_, _>>()?,
        FeatureColumns::AllButLabel { count } => {
            let cols: Vec<usize> = (0..width).filter(|i| !label_cols.contains(i)).collect();
            if let Some(n) = count.filter(|&n| n != cols.len()) {
                return Err(problem(
                    shown,
                    DATA_SHAPE_MISMATCH,
                    1,
                    0,
                    format!(
                        "{shown} has {} feature columns, but the source declares `features: {n}`",
                        cols.len()
                    ),
                ));
            }
            cols
        }
    };
    Ok((label_cols, feature_cols))
}

/// The 0-based index of column `c` (`what`: "label" or "feature").
fn resolve(
    c: &ColumnRef,
    what: &str,
    header: Option<&[String]>,
    width: usize,
    shown: &str,
) -> Result<usize, Diagnostic> {
    match (c, header) {
        (ColumnRef::Index(i), _) if *i < width => Ok(*i),
        (ColumnRef::Index(i), _) => Err(problem(
            shown,
            DATA_COLUMN_NOT_FOUND,
            1,
            0,
            format!("{what} column {i} is past the last column of {shown} ({width} columns)"),
        )),
        (ColumnRef::Name(n), Some(h)) => h.iter().position(|x| x == n).ok_or_else(|| {
            let names: Vec<&str> = h.iter().map(String::as_str).collect();
            problem(
                shown,
                DATA_COLUMN_NOT_FOUND,
                1,
                0,
                format!("{what} column `{n}` is not in the header of {shown}"),
            )
            .help(help_or_list(n, &names))
        }),
        (ColumnRef::Name(n), None) => Err(problem(
            shown,
            DATA_COLUMN_NOT_FOUND,
            0,
            0,
            format!("{what} column `{n}` is named, but {shown} is read without a header"),
        )
        .help("name columns by 0-based index, or set `header: true`")),
    }
}

/// Cell `i` (0-based) of a row at `line`: a finite number.
fn cell(record: &csv::StringRecord, i: usize, line: u64, shown: &str) -> Result<f64, Diagnostic> {
    let raw = record.get(i).unwrap_or("");
    // A cell's text is quoted in messages, but at most its first 40 characters: a file's cell
    // may be megabytes long.
    let text = capped_list(&[raw]);
    let v: f64 = raw.parse().map_err(|_| {
        problem(
            shown,
            DATA_NOT_A_NUMBER,
            line,
            i + 1,
            format!(
                "cell at row {line}, column {} of {shown} is not a number: `{text}`",
                i + 1
            ),
        )
    })?;
    if v.is_finite() && (v as f32).is_infinite() {
        // Finite as written, but beyond f32, which every feature and label becomes.
        return Err(problem(
            shown,
            DATA_NON_FINITE,
            line,
            i + 1,
            format!(
                "cell at row {line}, column {} of {shown} is `{text}`, beyond the range of f32 (±3.4e38)",
                i + 1
            ),
        ));
    }
    if v.is_finite() {
        Ok(v)
    } else {
        Err(problem(
            shown,
            DATA_NON_FINITE,
            line,
            i + 1,
            format!(
                "cell at row {line}, column {} of {shown} is `{text}`",
                i + 1
            ),
        ))
    }
}

/// Checks that `v` is a class id: a whole number in `0..classes`.
pub(crate) fn check_class(v: f64, classes: Option<u32>, row: u64) -> Result<(), String> {
    if v.fract() != 0.0 || v < 0.0 {
        return Err(format!(
            "label {v} at row {row} is not a class id (a whole number from 0)"
        ));
    }
    match classes {
        Some(c) if v >= f64::from(c) => Err(format!(
            "label {v} at row {row} is outside the {c} classes 0..{}",
            c - 1
        )),
        _ => Ok(()),
    }
}
