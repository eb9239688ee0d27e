//! How `modelc run` prints its outputs: a classifier's ranked classes per row as a table, other
//! outputs as a NumPy-like table for people; with `--format json` one object holding each
//! output's values as nested arrays and a classifier's `predictions`. Outputs of more than
//! `PRINT_LIMIT` values are shortened like NumPy in the human form.

use crate::cli::options::SummaryFormat;
use crate::cli::output::Output;
use ndarray::{ArrayD, ArrayViewD};
use std::fmt::Write as _;

/// Outputs with at most this many values are printed in full.
const PRINT_LIMIT: usize = 200;

pub(super) fn print_outputs(
    format: SummaryFormat,
    model: &str,
    outputs: &[ArrayD<f32>],
    shown: &super::Shown<'_>,
) {
    let names = shown.names;
    match format {
        SummaryFormat::Json => {
            let list: Vec<serde_json::Value> = names
                .iter()
                .zip(outputs)
                .enumerate()
                .map(|(i, (name, y))| {
                    let mut entry = serde_json::json!({
                        "name": name,
                        "shape": y.shape(),
                        "values": nested_json(&y.view()),
                    });
                    if let (0, Some(rows), Some(map)) = (i, shown.ranked, entry.as_object_mut()) {
                        map.insert(
                            "predictions".into(),
                            super::predictions::json(rows, shown.row_names),
                        );
                    }
                    entry
                })
                .collect();
            let json = serde_json::json!({ "model": model, "outputs": list });
            Output::stdout(&format!("{json}\n"));
        }
        SummaryFormat::Human => {
            let mut text = String::new();
            for (i, (name, y)) in names.iter().zip(outputs).enumerate() {
                let _ = writeln!(text, "{name}: f32{:?}", y.shape());
                if let (0, Some(rows)) = (i, shown.ranked) {
                    text.push_str(&super::predictions::table(rows, shown.row_names));
                    continue;
                }
                if let (Some(files), 0) = (shown.row_names, i) {
                    let _ = writeln!(text, "rows, in order: {}", files.join(", "));
                }
                text.push_str(&array_repr(&y.view()));
                text.push('\n');
                if y.len() > PRINT_LIMIT {
                    let _ = writeln!(
                        text,
                        "({} values, shortened; write them all with `-o out.npy`)",
                        y.len()
                    );
                }
            }
            Output::stdout(&text);
        }
    }
}

/// The array as nested JSON lists (NaN and infinities become `null`).
fn nested_json(a: &ArrayViewD<'_, f32>) -> serde_json::Value {
    if a.ndim() == 0 {
        return a.iter().next().map_or(serde_json::Value::Null, |&v| {
            serde_json::Number::from_f64(f64::from(v)).map_or(serde_json::Value::Null, Into::into)
        });
    }
    serde_json::Value::Array(a.outer_iter().map(|row| nested_json(&row)).collect())
}

/// A numpy-like rendering: nested brackets, one aligned number format for the whole array;
/// past [`PRINT_LIMIT`] values every long axis shows its first and last 3 entries around `...`.
pub(super) fn array_repr(a: &ArrayViewD<'_, f32>) -> String {
    let summarize = a.len() > PRINT_LIMIT;
    let finite: Vec<f32> = a.iter().copied().filter(|v| v.is_finite()).collect();
    let max = finite.iter().fold(0f32, |m, v| m.max(v.abs()));
    let min_nonzero = finite
        .iter()
        .filter(|v| **v != 0.0)
        .fold(f32::INFINITY, |m, v| m.min(v.abs()));
    let scientific = max >= 1e6 || (min_nonzero < 1e-4 && min_nonzero.is_finite());
    let fmt = |v: f32| -> String {
        if !v.is_finite() {
            format!("{v}")
        } else if scientific {
            format!("{v:.6e}")
        } else {
            format!("{v:.6}")
        }
    };
    let width = a.iter().map(|&v| fmt(v).len()).max().unwrap_or(1);
    let mut text = String::new();
    repr_rec(a, &fmt, width, summarize, 0, &mut text);
    text
}

fn repr_rec(
    a: &ArrayViewD<'_, f32>,
    fmt: &dyn Fn(f32) -> String,
    width: usize,
    summarize: bool,
    depth: usize,
    out: &mut String,
) {
    if a.ndim() == 0 {
        if let Some(&v) = a.iter().next() {
            let _ = write!(out, "{:>width$}", fmt(v));
        }
        return;
    }
    let n = a.shape().first().copied().unwrap_or(0);
    let shown: Vec<Option<usize>> = if summarize && n > 6 {
        (0..3)
            .map(Some)
            .chain([None])
            .chain((n - 3..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    let separator = if a.ndim() == 1 {
        ", ".to_string()
    } else {
        format!(",{}\n{}", "\n".repeat(a.ndim() - 2), " ".repeat(depth + 1))
    };
    out.push('[');
    for (k, index) in shown.iter().enumerate() {
        if k > 0 {
            out.push_str(&separator);
        }
        match index {
            Some(i) => repr_rec(
                &a.index_axis(ndarray::Axis(0), *i),
                fmt,
                width,
                summarize,
                depth + 1,
                out,
            ),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}
