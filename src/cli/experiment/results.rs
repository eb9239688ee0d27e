//! The files an experiment writes beside its trial folders: each trial's `trial.json` (what
//! it is: name, configuration, varied settings, seed, seconds), and at the end, through the
//! `compare` module, `results.csv`, `summary.csv` and `report.html`, each atomically.

use super::super::output::Output;
use crate::check::experiment::{CheckedExperiment, Trial};
use crate::compare::{self, Goal, Run, Select, TrialInfo};
use crate::diag::{codes, Diagnostic, Format};
use crate::util;
use std::path::Path;

/// Whether a trial folder holds a finished trial: `trial.json` is written last.
pub fn finished(dir: &Path) -> bool {
    dir.join("trial.json").is_file() && dir.join("metrics.csv").is_file()
}

fn write(path: &Path, text: &str) -> Result<(), Diagnostic> {
    util::write_atomic(path, text.as_bytes()).map_err(|e| {
        Diagnostic::error(
            codes::IO_WRITE,
            format!("cannot write {}: {e}", path.display()),
        )
    })
}

/// Records a finished trial in its folder.
pub fn write_trial_json(dir: &Path, trial: &Trial, seconds: f64) -> Result<(), Diagnostic> {
    let info = TrialInfo {
        name: trial.name.clone(),
        configuration: trial.configuration.clone(),
        settings: trial.settings.clone(),
        seed: trial.seed,
        seconds,
    };
    write(&dir.join("trial.json"), &compare::trial_info_json(&info))
}

fn read(path: &Path) -> Result<String, Diagnostic> {
    std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::error(
            codes::IO_READ,
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

/// Compares every trial and writes the three files; the line saying what won comes back. With
/// `--format json` the summary goes to stdout (the trials' objects went as they finished); the
/// ranked table goes to stdout for people.
pub fn compare_and_write(
    dir: &Path,
    experiment: &CheckedExperiment,
    spec_text: &str,
    format: Format,
) -> Result<String, Diagnostic> {
    let mut runs = Vec::new();
    for trial in &experiment.trials {
        let folder = dir.join("trials").join(&trial.name);
        let info_path = folder.join("trial.json");
        let metrics_path = folder.join("metrics.csv");
        let info = compare::parse_trial_info(&read(&info_path)?)
            .map_err(|e| e.to_diagnostic(Some(&info_path.display().to_string())))?;
        let history = compare::parse_metrics_csv(&read(&metrics_path)?)
            .map_err(|e| e.to_diagnostic(Some(&metrics_path.display().to_string())))?;
        runs.push(Run { info, history });
    }
    let select = Select {
        metric: Some(experiment.select.metric.clone()),
        goal: if experiment.select.maximize {
            Goal::Max
        } else {
            Goal::Min
        },
    };
    let c = compare::compare(&runs, &select).map_err(|e| e.to_diagnostic(None))?;
    write(&dir.join("results.csv"), &compare::results_csv(&c))?;
    write(&dir.join("summary.csv"), &compare::summary_csv(&c))?;
    let title = format!("experiment {}", experiment.name);
    write(
        &dir.join("report.html"),
        &compare::report_html(&c, &title, Some(spec_text)),
    )?;
    match format {
        Format::Json => {
            let lines = compare::json_lines(&c);
            if let Some(summary) = lines.lines().last() {
                Output::stdout(&format!("{summary}\n"));
            }
        }
        _ => Output::stdout(&compare::table_text(&c)),
    }
    let winner = c.winning().map_or_else(
        || "no configuration has a finite score".to_string(),
        |w| {
            format!(
                "best: {} ({} {} {:.4})",
                w.configuration,
                if experiment.select.maximize {
                    "max"
                } else {
                    "min"
                },
                c.metric,
                w.score.mean
            )
        },
    );
    Ok(format!(
        "{winner}; results in {}: results.csv, summary.csv, report.html",
        dir.display()
    ))
}
