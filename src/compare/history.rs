//! A run's `metrics.csv` read back: the header's columns and one row of numbers per epoch, as
//! `fit::report::metrics_csv` writes them (`epoch,loss,<metrics>,val_loss,<val metrics>,lr,
//! samples_per_sec`). Any other file is refused with the line and column where it stops making
//! sense (E1102); `NaN` and `inf` cells are numbers (a diverged run is ranked, not refused).

use super::CompareError;

/// Columns of `metrics.csv` that describe the run, not the model: not metrics to compare.
const NOT_METRICS: [&str; 3] = ["epoch", "lr", "samples_per_sec"];

/// A run's history: `metrics.csv` parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub columns: Vec<String>,
    /// One row per epoch, each with a value per column.
    pub rows: Vec<Vec<f64>>,
}

impl History {
    /// The index of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The metric columns (`loss`, `accuracy`, `val_loss`, ...), in the file's order.
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .map(String::as_str)
            .filter(|c| !NOT_METRICS.contains(c))
    }

    /// The epoch number of a row (its `epoch` cell; the 1-based row number when that is not
    /// a whole number).
    pub fn epoch_of(&self, row: usize) -> u64 {
        let by_position = row as u64 + 1;
        let cell = self
            .column("epoch")
            .and_then(|c| self.rows.get(row)?.get(c).copied());
        match cell {
            Some(e) if e >= 0.0 && e.fract() == 0.0 && e < 1e15 => e as u64,
            _ => by_position,
        }
    }

    /// One column's values, row by row (`NaN` where a row has none).
    pub fn series(&self, name: &str) -> Option<Vec<f64>> {
        let col = self.column(name)?;
        Some(
            self.rows
                .iter()
                .map(|r| r.get(col).copied().unwrap_or(f64::NAN))
                .collect(),
        )
    }
}

/// Parses a `metrics.csv`. The header must name an `epoch` column and at least one metric,
/// each column once; every row must have a number in every cell. A header alone is an empty
/// history (a run stopped before its first epoch ended).
pub fn parse_metrics_csv(text: &str) -> Result<History, CompareError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    let bad = |line: usize, column: usize, problem: String| CompareError::BadMetrics {
        line,
        column,
        problem,
    };
    let Some((_, header)) = lines.next().filter(|(_, h)| !h.trim().is_empty()) else {
        return Err(bad(1, 0, "the file is empty: no header".into()));
    };
    let mut columns: Vec<String> = Vec::new();
    for (k, cell) in header.split(',').enumerate() {
        let name = cell.trim();
        if name.is_empty() {
            return Err(bad(
                1,
                k + 1,
                format!("header column {} has no name", k + 1),
            ));
        }
        if columns.iter().any(|c| c == name) {
            return Err(bad(1, k + 1, format!("column `{name}` is named twice")));
        }
        columns.push(name.to_string());
    }
    if !columns.iter().any(|c| c == "epoch") {
        return Err(bad(1, 1, "the header has no `epoch` column".into()));
    }
    if !columns.iter().any(|c| !NOT_METRICS.contains(&c.as_str())) {
        return Err(bad(
            1,
            1,
            "the header names no metric (such as `loss`)".into(),
        ));
    }
    let mut rows = Vec::new();
    let rest: Vec<(usize, &str)> = lines.collect();
    let last_filled = rest.iter().rposition(|(_, l)| !l.trim().is_empty());
    for &(line, text) in rest.iter().take(last_filled.map_or(0, |i| i + 1)) {
        let cells: Vec<&str> = text.split(',').collect();
        if cells.len() != columns.len() {
            return Err(bad(
                line,
                0,
                format!(
                    "row has {} cells but the header names {} columns",
                    cells.len(),
                    columns.len()
                ),
            ));
        }
        let mut row = Vec::with_capacity(cells.len());
        for (k, cell) in cells.iter().enumerate() {
            let value = cell.trim().parse::<f64>().map_err(|_| {
                bad(
                    line,
                    k + 1,
                    format!(
                        "cell `{}` of column `{}` is not a number",
                        cell.trim(),
                        columns[k]
                    ),
                )
            })?;
            row.push(value);
        }
        rows.push(row);
    }
    Ok(History { columns, rows })
}
