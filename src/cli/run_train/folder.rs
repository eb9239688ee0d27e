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
use std::path::{Path, PathBuf};

/// The files a run leaves in its folder; one of them present means the folder holds a run.
pub const RUN_FILES: [&str; 6] = [
    "checkpoint.safetensors",
    "best.safetensors",
    "weights.safetensors",
    "plan.ron",
    "metrics.csv",
    "curves.svg",
];

/// The first file of an earlier run found in `dir`, if any.
pub fn earlier_run(dir: &Path) -> Option<&'static str> {
    RUN_FILES
        .into_iter()
        .find(|f| dir.join(f).symlink_metadata().is_ok())
}

/// The lock of a run folder, held while `modelc train` runs there: `.modelc.lock`, an advisory
/// lock the system drops when the process ends, however it ends. Dropping it removes the file,
/// so a run leaves nothing behind but its results.
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked, so no other process can lock this file after us.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Locks `dir` for this training. `Err` when another process holds the lock, or the lock file
/// cannot be made.
pub fn lock_run(dir: &Path) -> Result<RunLock, Diagnostic> {
    let path = dir.join(".modelc.lock");
    let busy = || {
        Diagnostic::error(
            codes::IO_USAGE,
            format!("another `modelc train` is running in {}", dir.display()),
        )
        .help("wait for it to finish, or train into another `--out`")
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            Diagnostic::error(
                codes::IO_WRITE,
                // Found before training: a folder that cannot take the lock cannot take the
                // checkpoint either.
                format!(
                    "cannot write in {}: {e} (the run's checkpoint, weights and plan go there)",
                    dir.display()
                ),
            )
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(busy()),
        Err(TryLockError::Error(e)) => {
            return Err(Diagnostic::error(
                codes::IO_WRITE,
                format!("cannot lock {}: {e}", path.display()),
            ))
        }
    }
    // The file we locked may have been removed by the run that held it just before: then a
    // new run has the folder (or will), and this one must not train beside it.
    if !same_file(&file, &path) {
        return Err(busy());
    }
    remove_orphaned_temp_files(dir);
    Ok(RunLock { file, path })
}

/// Removes the temporary files a killed run left in `dir` between writing one and renaming it
/// over its target (`util::write_atomic`'s `.modelc-*.tmp`). Only under the run's lock, so no
/// other run is writing there; what cannot be removed stays, and costs nothing but space.
fn remove_orphaned_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let orphan = name.to_str().is_some_and(util::is_temp_file_name);
        if orphan && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether `path` still names the open `file`.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
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
    let curves = fit::report::curves_svg(title, history)
        .map_err(|e| internal(&format!("cannot draw the curves: {e}")))?;
    write("curves.svg", curves.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn taking_the_lock_removes_temp_files_a_killed_run_left_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = dir.path().join(".modelc-a1B2c3.tmp");
        std::fs::write(&orphan, b"half a checkpoint").unwrap();
        let kept = [
            "weights.safetensors",
            "notes.tmp",
            ".modelc-x.tmp.bak",
            ".modelc.lock.tmp",
        ];
        for name in kept {
            std::fs::write(dir.path().join(name), b"user data").unwrap();
        }
        std::fs::create_dir(dir.path().join(".modelc-dir.tmp")).unwrap();
        let lock = lock_run(dir.path()).unwrap();
        assert!(!orphan.exists());
        for name in kept {
            assert!(dir.path().join(name).exists(), "{name}");
        }
        assert!(dir.path().join(".modelc-dir.tmp").is_dir());
        drop(lock);
    }
}
