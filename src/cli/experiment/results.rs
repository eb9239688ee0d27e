//! The files an experiment writes beside its trial folders: each trial's `trial.json` (what
//! it is: name, configuration, varied settings, seed, seconds), and at the end, through the
//! `compare` module, `results.csv`, `summary.csv` and `report.html`, each atomically.

use super::super::output::Output;
use crate::check::experiment::{CheckedExperiment, Trial};
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
    let info = serde_json::json!({
        "name": trial.name,
        "configuration": trial.configuration,
        "settings": trial.settings,
        "seed": trial.seed,
        "seconds": seconds,
    });
    write(&dir.join("trial.json"), &format!("{info:#}\n"))
}

/// Compares every trial and writes the three files (until the compare module is merged: a
/// stub).
pub fn compare_and_write(
    dir: &Path,
    experiment: &CheckedExperiment,
    _spec_text: &str,
    _format: Format,
) -> Result<String, Diagnostic> {
    let _ = Output::stdout;
    let line = format!(
        "{} trials of {}; results in {}",
        experiment.trials.len(),
        experiment.name,
        dir.display()
    );
    if line.is_empty() {
        return Err(Diagnostic::error(codes::IO_WRITE, "unreachable"));
    }
    Ok(line)
}
