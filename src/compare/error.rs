//! The problems of comparing runs (E11xx), each turned into a [`Diagnostic`] with the file or
//! folder it is about and a help line.

use crate::diag::{codes, suggest, Code, Diagnostic};
use thiserror::Error;

/// A run that cannot be compared, or runs that cannot be compared together.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CompareError {
    /// E1101: a folder without `metrics.csv` (the CLI finds this; it reads the files).
    #[error("{folder} holds no metrics.csv: it is not a run folder")]
    NoMetrics { folder: String },
    /// E1102: `metrics.csv` is not a history. `line` and `column` are 1-based, 0 when unknown.
    #[error("{problem}")]
    BadMetrics {
        line: usize,
        column: usize,
        problem: String,
    },
    /// E1103: `trial.json` is not a trial record.
    #[error("{problem}")]
    BadTrialInfo { problem: String },
    /// E1104: a run without the select metric.
    #[error("run `{trial}` did not record `{metric}`")]
    UnknownMetric {
        metric: String,
        trial: String,
        available: Vec<String>,
    },
    /// E1105: two runs with one trial name.
    #[error("two runs are named `{name}`")]
    DuplicateTrial { name: String },
}

impl CompareError {
    /// The registered code.
    pub fn code(&self) -> Code {
        match self {
            CompareError::NoMetrics { .. } => codes::COMPARE_NO_METRICS,
            CompareError::BadMetrics { .. } => codes::COMPARE_BAD_METRICS,
            CompareError::BadTrialInfo { .. } => codes::COMPARE_BAD_TRIAL_INFO,
            CompareError::UnknownMetric { .. } => codes::COMPARE_UNKNOWN_METRIC,
            CompareError::DuplicateTrial { .. } => codes::COMPARE_DUPLICATE_TRIAL,
        }
    }

    /// The diagnostic; `file` is the file the problem is in (`runs/a/metrics.csv`), when the
    /// problem is in one file.
    pub fn to_diagnostic(&self, file: Option<&str>) -> Diagnostic {
        let code = self.code();
        let place = file.unwrap_or("the file");
        match self {
            CompareError::NoMetrics { .. } => Diagnostic::error(code, self.to_string())
                .help("give the folders `modelc train --out DIR` or `modelc experiment` wrote"),
            CompareError::BadMetrics {
                line,
                column,
                problem,
            } => Diagnostic::error(code, format!("{place} is not a run's history: {problem}"))
                .at_external(place, *line, *column)
                .help(
                    "train the run again (`modelc train FILE --out DIR --force`), or leave it out",
                ),
            CompareError::BadTrialInfo { problem } => {
                Diagnostic::error(code, format!("{place} is not a trial record: {problem}"))
                    .at_external(place, 0, 0)
                    .help(
                        "delete it (the folder's name then names the trial) or run the \
                         experiment again",
                    )
            }
            CompareError::UnknownMetric {
                metric, available, ..
            } => {
                let d = Diagnostic::error(code, self.to_string())
                    .note(format!("the run recorded: {}", available.join(", ")));
                match suggest::closest(metric, available.iter().map(String::as_str)) {
                    Some(c) => d.help(format!("did you mean `{c}`?")),
                    None => d.help("select a metric every run recorded"),
                }
            }
            CompareError::DuplicateTrial { .. } => Diagnostic::error(code, self.to_string())
                .note("a run's name is the `name` in its trial.json, or else its folder's name")
                .help("rename one of the folders so that every run has a name of its own"),
        }
    }
}
