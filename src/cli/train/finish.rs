//! The end of `modelc train`: the final status line (how the run ended, the best epoch when the
//! block stops early, and every file written), or with `--format json` one last JSON object
//! after the per-epoch ones; and the exit status (130 when interrupted).

use super::super::output::Output;
use super::super::run_train::folder::{files_in, RUN_FILES};
use super::epoch_line;
use crate::diag::Format;
use crate::fit::{BestEpoch, EpochRecord, FitEnd};
use std::path::Path;

/// Reports how the run ended; returns the exit status.
pub fn finish(
    out: &Output,
    format: Format,
    end: FitEnd,
    best: Option<&BestEpoch>,
    history: &[EpochRecord],
    dir: &Path,
) -> u8 {
    let status = if matches!(end, FitEnd::Interrupted { .. }) {
        130
    } else {
        0
    };
    if format == Format::Json {
        Output::stdout(&format!("{}\n", summary_json(end, best, history, dir)));
        return status;
    }
    let best_text = best.map_or(String::new(), |b| format!("; {}", best_line(b)));
    match end {
        FitEnd::Interrupted { epoch } => out.status(
            "Interrupted",
            &format!("during epoch {epoch}; checkpoint written; continue with `--resume`"),
        ),
        FitEnd::EarlyStopped { epoch } => out.status(
            "Stopped",
            &format!(
                "early after epoch {epoch}{best_text}; results in {}: {}",
                dir.display(),
                files_in(dir)
            ),
        ),
        FitEnd::Completed => {
            if let Some(last) = history.last() {
                out.status(
                    "Finished",
                    &format!(
                        "{}{best_text}; results in {}: {}",
                        epoch_line(last),
                        dir.display(),
                        files_in(dir)
                    ),
                );
            }
        }
    }
    status
}

/// `best epoch 4 (val_accuracy 0.9120), its weights kept`.
fn best_line(b: &BestEpoch) -> String {
    format!(
        "best epoch {} ({} {:.4}){}",
        b.epoch,
        b.monitor,
        b.value,
        if b.restored { ", its weights kept" } else { "" }
    )
}

/// `{"end": "early_stopped", "epochs": 7, "best": {...}, "out": DIR, "files": [...]}`.
fn summary_json(
    end: FitEnd,
    best: Option<&BestEpoch>,
    history: &[EpochRecord],
    dir: &Path,
) -> serde_json::Value {
    let (name, epoch) = match end {
        FitEnd::Completed => ("completed", history.last().map_or(0, |r| r.epoch)),
        FitEnd::EarlyStopped { epoch } => ("early_stopped", epoch),
        FitEnd::Interrupted { epoch } => ("interrupted", epoch),
    };
    let files: Vec<&str> = RUN_FILES
        .into_iter()
        .filter(|f| dir.join(f).is_file())
        .collect();
    serde_json::json!({
        "end": name,
        "epochs": epoch,
        "best": best.map(|b| serde_json::json!({
            "epoch": b.epoch,
            "monitor": b.monitor,
            "value": b.value,
            "restored": b.restored,
        })),
        "out": dir.display().to_string(),
        "files": files,
    })
}
