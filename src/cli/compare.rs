//! `modelc compare RUN_DIR... [--select max|min METRIC] [-o DIR] [--format json]`: the ranked
//! table of run folders made by `modelc train` (or an experiment's trials), and with `-o DIR`
//! the files `results.csv`, `summary.csv` and `report.html` there (each written atomically).
//!
//! A folder's `metrics.csv` is its history; its `trial.json`, when an experiment wrote one,
//! names its trial, configuration and settings (else the folder's name is its trial and its
//! configuration). A missing or corrupt `metrics.csv` is E1101/E1102 naming the folder (exit 1);
//! a missing folder is E0900 (exit 2).

use super::common::{diag_format, read_bytes, report};
use super::options::SummaryFormat;
use super::output::Output;
use crate::compare::{self, CompareError, Goal, Run, Select, TrialInfo};
use crate::diag::{codes, Diagnostic, SourceMap};
use crate::util;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run folders (`modelc train --out DIR`, or an experiment's `trials/NAME`).
    #[arg(value_name = "RUN_DIR", required = true)]
    pub runs: Vec<PathBuf>,
    /// How the winner is chosen: `max METRIC` or `min METRIC`, a column of metrics.csv
    /// (default: the lowest val_loss when every run has one, else the lowest loss).
    #[arg(long, num_args = 2, value_names = ["max|min", "METRIC"])]
    pub select: Option<Vec<String>>,
    /// Write results.csv, summary.csv and report.html into this folder (made if missing).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// `human`: the ranked table; `json`: one JSON object per trial, then the summary.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Human)]
    pub format: SummaryFormat,
}

/// Runs `compare`; returns the exit status.
pub fn run(args: &CompareArgs, out: &Output) -> u8 {
    let map = SourceMap::new();
    let select = match parse_select(args.select.as_deref()) {
        Ok(s) => s,
        Err(d) => return report(out, &map, vec![d]),
    };
    let mut runs = Vec::new();
    let mut problems = Vec::new();
    for dir in &args.runs {
        match read_run(dir) {
            Ok(r) => runs.push(r),
            Err(d) => problems.push(d),
        }
    }
    if !problems.is_empty() {
        return report(out, &map, problems);
    }
    let comparison = match compare::compare(&runs, &select) {
        Ok(c) => c,
        Err(e) => return report(out, &map, vec![with_folders(&e, args)]),
    };
    if let Some(dir) = &args.out {
        if let Err(d) = write_outputs(dir, &comparison) {
            return report(out, &map, vec![d]);
        }
        out.status(
            "Wrote",
            &format!(
                "{0}/results.csv, {0}/summary.csv, {0}/report.html",
                dir.display()
            ),
        );
    }
    match args.format {
        SummaryFormat::Human => Output::stdout(&compare::table_text(&comparison)),
        SummaryFormat::Json => Output::stdout(&compare::json_lines(&comparison)),
    }
    0
}

/// The output of a command with this format.
pub fn output(args: &CompareArgs, color: super::options::ColorWhen) -> Output {
    Output::new(color, diag_format(args.format))
}

fn parse_select(words: Option<&[String]>) -> Result<Select, Diagnostic> {
    let Some(words) = words else {
        return Ok(Select::default());
    };
    let (goal, metric) = match words {
        [g, m] if g == "min" => (Goal::Min, m),
        [g, m] if g == "max" => (Goal::Max, m),
        _ => {
            return Err(Diagnostic::error(
                codes::IO_USAGE,
                format!(
                    "`--select {}` is not `max METRIC` or `min METRIC`",
                    words.join(" ")
                ),
            )
            .help("for example `--select max val_accuracy` or `--select min val_loss`"))
        }
    };
    Ok(Select {
        metric: Some(metric.clone()),
        goal,
    })
}

/// A folder's trial name when it has no trial.json: its own name.
fn folder_name(dir: &Path) -> String {
    let own = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    own.or_else(|| {
        let full = dir.canonicalize().ok()?;
        Some(full.file_name()?.to_string_lossy().into_owned())
    })
    .unwrap_or_else(|| dir.display().to_string())
}

/// Reads one run folder's `metrics.csv` and, when present, `trial.json`.
fn read_run(dir: &Path) -> Result<Run, Diagnostic> {
    let shown = dir.display().to_string();
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Diagnostic::error(
                codes::IO_READ,
                format!("cannot read run folder {shown}: it is not a folder"),
            )
            .at_external(shown, 0, 0)
            .help("give the folder that holds metrics.csv"))
        }
        Err(e) => {
            return Err(Diagnostic::error(
                codes::IO_READ,
                format!("cannot read run folder {shown}: {e}"),
            )
            .at_external(shown, 0, 0))
        }
    }
    let metrics_path = dir.join("metrics.csv");
    if metrics_path.symlink_metadata().is_err() {
        return Err(CompareError::NoMetrics {
            folder: shown.clone(),
        }
        .to_diagnostic(None)
        .at_external(shown, 0, 0));
    }
    let metrics_shown = metrics_path.display().to_string();
    let text = String::from_utf8(read_bytes(&metrics_path)?).map_err(|_| {
        CompareError::BadMetrics {
            line: 0,
            column: 0,
            problem: "the file is not UTF-8 text".into(),
        }
        .to_diagnostic(Some(&metrics_shown))
    })?;
    let history =
        compare::parse_metrics_csv(&text).map_err(|e| e.to_diagnostic(Some(&metrics_shown)))?;
    let trial_path = dir.join("trial.json");
    let info = if trial_path.symlink_metadata().is_ok() {
        let trial_shown = trial_path.display().to_string();
        let bad = |problem: String| {
            CompareError::BadTrialInfo { problem }.to_diagnostic(Some(&trial_shown))
        };
        let text = String::from_utf8(read_bytes(&trial_path)?)
            .map_err(|_| bad("the file is not UTF-8 text".into()))?;
        compare::parse_trial_info(&text).map_err(|e| e.to_diagnostic(Some(&trial_shown)))?
    } else {
        TrialInfo::bare(&folder_name(dir))
    };
    Ok(Run { info, history })
}

/// The diagnostic of a comparison's error, naming the folders of a duplicated trial name.
fn with_folders(e: &CompareError, args: &CompareArgs) -> Diagnostic {
    let d = e.to_diagnostic(None);
    match e {
        CompareError::DuplicateTrial { name } => {
            let folders: Vec<String> = args
                .runs
                .iter()
                .filter(|dir| folder_name(dir) == *name)
                .map(|dir| dir.display().to_string())
                .collect();
            if folders.is_empty() {
                d
            } else {
                d.note(format!("the folders: {}", folders.join(", ")))
            }
        }
        _ => d,
    }
}

fn write_outputs(dir: &Path, c: &compare::Comparison) -> Result<(), Diagnostic> {
    let fail = |path: &Path, e: std::io::Error| {
        Diagnostic::error(
            codes::IO_WRITE,
            format!("cannot write {}: {e}", path.display()),
        )
        .at_external(path.display().to_string(), 0, 0)
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let title = format!("modelc compare: {} runs", c.trials.len());
    let files = [
        ("results.csv", compare::results_csv(c)),
        ("summary.csv", compare::summary_csv(c)),
        ("report.html", compare::report_html(c, &title, None)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        util::write_atomic(&path, text.as_bytes()).map_err(|e| fail(&path, e))?;
    }
    Ok(())
}
