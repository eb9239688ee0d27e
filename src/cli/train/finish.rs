//! The end of `modelc train`: the final status lines (how the run ended, the best epoch: early
//! stopping's when the block stops early, else the least `val_loss` or `loss`, and every file
//! written, by path), or with `--format json` one last JSON object after the per-epoch ones;
//! and the exit status (130 when interrupted).

use super::super::output::Output;
use super::super::run_train::folder::RUN_FILES;
use super::super::run_train::Saved;
use super::epoch_line;
use crate::diag::Format;
use crate::fit::{report, BestEpoch, EpochRecord, FitEnd};
use std::path::{Path, PathBuf};

/// Reports how the run ended; returns the exit status.
pub fn finish(
    out: &Output,
    format: Format,
    saved: &Saved,
    dir: &Path,
    log_file: Option<&Path>,
) -> u8 {
    let (end, best, history) = (saved.end, saved.best.as_ref(), saved.history.as_slice());
    let written = written_files(dir, log_file);
    let status = if matches!(end, FitEnd::Interrupted { .. }) {
        130
    } else {
        0
    };
    if format == Format::Json {
        let json = summary_json(end, best, history, dir, &written);
        Output::stdout(&format!("{json}\n"));
        return status;
    }
    let best_text = best.map_or(String::new(), |b| format!("; {}", best_line(b)));
    match end {
        FitEnd::Interrupted { epoch } => out.status(
            "Interrupted",
            &format!("during epoch {epoch}; checkpoint written; continue with `--resume`"),
        ),
        FitEnd::EarlyStopped { epoch } => {
            out.status("Stopped", &format!("early after epoch {epoch}{best_text}"));
        }
        FitEnd::Completed => {
            if let Some(last) = history.last() {
                out.status("Finished", &format!("{}{best_text}", epoch_line(last)));
            }
        }
    }
    if best.is_none() && !matches!(end, FitEnd::Interrupted { .. }) {
        if let Some((epoch, name, value)) = report::best_epoch(history) {
            out.status("Best", &format!("epoch {epoch} ({name} {value:.4})"));
        }
    }
    for path in &written {
        out.status("Wrote", &path.display().to_string());
    }
    status
}

/// Every file the run left, by path: the run folder's files, then the TensorBoard log.
fn written_files(dir: &Path, log_file: Option<&Path>) -> Vec<PathBuf> {
    RUN_FILES
        .into_iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .chain(log_file.filter(|p| p.is_file()).map(Path::to_path_buf))
        .collect()
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
    written: &[PathBuf],
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
    let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
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
        "written": paths,
    })
}
