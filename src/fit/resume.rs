//! Continuing a run from its checkpoint: the saved parameters and loop state, checked against
//! this spec, train block, plan and thread count before training goes on (E0808 when they do
//! not fit; every field of a checkpoint is untrusted).

use super::checkpoint::{self, TrainState};
use super::{failed, plateau, FitOptions};
use crate::check::train_types::CheckedTrain;
use crate::diag::{codes, Diagnostic};
use crate::plan::ExecutionPlan;
use crate::runtime::train::ParamStore;
use ndarray::ArrayD;
use std::path::Path;

/// Refuses a loaded loop state that cannot continue this run (`batches` per epoch, this
/// schedule): every field of a checkpoint is untrusted (E0808).
pub(super) fn check_resumable(
    options: &FitOptions,
    state: &TrainState,
    batches: u64,
    schedule: &crate::runtime::schedule::Chain,
) -> Result<(), Diagnostic> {
    let resumable = state
        .check_resumable(batches)
        .and_then(|()| plateau::check_resumed(schedule, state));
    resumable.map_err(|why| {
        let path = options.checkpoint.as_deref().unwrap_or(Path::new(""));
        Diagnostic::error(
            codes::TRAIN_CHECKPOINT,
            format!("cannot resume from {}: {why}", path.display()),
        )
        .at_external(path.display().to_string(), 0, 0)
        .help("start a fresh run without `--resume`")
    })
}

/// The parameters and loop state saved in `options.checkpoint`, checked against this spec, train
/// block and plan (E0808 when they do not fit).
pub(super) fn resume(
    options: &FitOptions,
    train: &CheckedTrain,
    plan: &ExecutionPlan,
    params: &ParamStore,
) -> Result<(TrainState, ParamStore), Diagnostic> {
    let path = options
        .checkpoint
        .as_ref()
        .ok_or_else(|| failed("--resume needs a checkpoint path"))?;
    let (saved, tensors) = checkpoint::load(path).map_err(|e| {
        Diagnostic::error(
            codes::TRAIN_CHECKPOINT,
            format!("cannot resume from {}: {e}", path.display()),
        )
        .at_external(path.display().to_string(), 0, 0)
    })?;
    if saved.spec_hash != options.spec_hash || saved.train != train.name {
        return Err(Diagnostic::error(
            codes::TRAIN_CHECKPOINT,
            format!("the checkpoint in {} was made by another spec or train block", path.display()),
        )
        .at_external(path.display().to_string(), 0, 0)
        .help("start a fresh run without `--resume`, or restore the spec the checkpoint was made with"));
    }
    let threads = rayon::current_num_threads() as u64;
    if let Some(saved_threads) = saved.threads.filter(|&t| t != threads) {
        return Err(Diagnostic::error(
            codes::TRAIN_CHECKPOINT,
            format!(
                "the checkpoint in {} was made with {saved_threads} threads and this run has {threads}: the numbers would not continue the same run",
                path.display()
            ),
        )
        .at_external(path.display().to_string(), 0, 0)
        .note("training gives the same numbers bit for bit only for the same thread count")
        .help(format!("resume with `--threads {saved_threads}`")));
    }
    let by_name: std::collections::HashMap<String, ArrayD<f32>> = tensors.into_iter().collect();
    let ordered: Option<Vec<ArrayD<f32>>> = params
        .names()
        .iter()
        .map(|n| by_name.get(n).cloned())
        .collect();
    let ordered = ordered.ok_or_else(|| {
        Diagnostic::error(
            codes::TRAIN_CHECKPOINT,
            format!(
                "the checkpoint in {} lacks parameters of this model",
                path.display()
            ),
        )
    })?;
    let params = ParamStore::from_tensors(plan, ordered).map_err(|e| {
        Diagnostic::error(
            codes::TRAIN_CHECKPOINT,
            format!("the checkpoint does not fit the model: {e}"),
        )
    })?;
    Ok((saved, params))
}
