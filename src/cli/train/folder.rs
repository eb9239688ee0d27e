//! The run folder of `modelc train`: which files a run leaves there, whether a folder holds an
//! earlier run, the lock that keeps two trainings out of one folder, and writing the trained
//! weights, plan, metrics and curves (each atomically).

use super::internal;
use crate::diag::{codes, Diagnostic};
use crate::fit::{self, EpochRecord};
use crate::plan::ExecutionPlan;
use crate::runtime::train::ParamStore;
use crate::runtime::weights::{self, Weights};
use crate::{ir, util};
use std::fs::{File, TryLockError};
use std::path::Path;

/// The files a run leaves in its folder; one of them present means the folder holds a run.
pub const RUN_FILES: [&str; 5] = [
    "checkpoint.safetensors",
    "weights.safetensors",
    "plan.ron",
    "metrics.csv",
    "curves.svg",
];

/// The run files present in `dir`, for the final line: `weights.safetensors, plan.ron, ...`.
pub fn files_in(dir: &Path) -> String {
    RUN_FILES
        .into_iter()
        .filter(|f| dir.join(f).is_file())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first file of an earlier run found in `dir`, if any.
pub fn earlier_run(dir: &Path) -> Option<&'static str> {
    RUN_FILES
        .into_iter()
        .find(|f| dir.join(f).symlink_metadata().is_ok())
}

/// Locks `dir` for this training (`.modelc.lock`, an advisory lock the system drops when the
/// process ends, however it ends). `Err` when another process holds it, or the lock file cannot
/// be made.
pub fn lock_run(dir: &Path) -> Result<File, Diagnostic> {
    let path = dir.join(".modelc.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            Diagnostic::error(
                codes::IO_WRITE,
                format!("cannot create {}: {e}", path.display()),
            )
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Diagnostic::error(
            codes::IO_USAGE,
            format!("another `modelc train` is running in {}", dir.display()),
        )
        .help("wait for it to finish, or train into another `--out`")),
        Err(TryLockError::Error(e)) => Err(Diagnostic::error(
            codes::IO_WRITE,
            format!("cannot lock {}: {e}", path.display()),
        )),
    }
}

/// The run's files, each written atomically.
pub fn write_outputs(
    dir: &Path,
    infer_plan: &ExecutionPlan,
    params: ParamStore,
    history: &[EpochRecord],
    title: &str,
) -> Result<(), Diagnostic> {
    let names = params.names().to_vec();
    let named: Vec<(String, ndarray::ArrayD<f32>)> = names
        .into_iter()
        .zip(params.into_tensors())
        .filter(|(n, _)| {
            infer_plan
                .params
                .iter()
                .any(|q| &q.name == n && q.source == ir::ParamSource::Stored)
        })
        .collect();
    let weights = Weights::from_named(infer_plan, named)
        .map_err(|e| internal(&format!("trained weights do not fit the plan: {e:?}")))?;
    let wpath = dir.join("weights.safetensors");
    weights::save_weights(&wpath, &weights)
        .map_err(|e| e.to_diagnostic(&wpath.display().to_string()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        util::write_atomic(&path, bytes).map_err(|e| {
            Diagnostic::error(
                codes::IO_WRITE,
                format!("cannot write {}: {e}", path.display()),
            )
        })
    };
    let ron = infer_plan.to_ron().map_err(|e| internal(&e.to_string()))?;
    write("plan.ron", ron.as_bytes())?;
    write("metrics.csv", fit::report::metrics_csv(history).as_bytes())?;
    write(
        "curves.svg",
        fit::report::curves_svg(title, history).as_bytes(),
    )?;
    Ok(())
}
