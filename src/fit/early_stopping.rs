//! Early stopping: after each epoch, whether the monitored value improved (in the block's
//! direction, by more than `min_delta`), whether `patience` epochs passed without improvement,
//! and the best epoch's weights: kept in memory and in a save-best checkpoint
//! (`best.safetensors`, the checkpoint format) so that `restore_best` can end the run with them,
//! also after a resume.
//!
//! Input: the checked `early_stopping` setting and the epoch records. Output: the decision and
//! [`BestEpoch`]. The best value and epoch live in the checkpoint's `TrainState`.

use super::checkpoint::{self, TrainState};
use super::EpochRecord;
use crate::check::{EarlyStopping, MonitorMode};
use crate::plan::ExecutionPlan;
use crate::runtime::train::ParamStore;
use serde::Serialize;
use std::path::Path;

/// The best epoch of a run with early stopping, for the final report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BestEpoch {
    /// 1-based.
    pub epoch: u64,
    /// What was monitored, and its value at that epoch.
    pub monitor: String,
    pub value: f64,
    /// Whether the run ended with this epoch's weights (`restore_best` and a later last epoch).
    pub restored: bool,
}

/// The value early stopping watches in a record (`loss`, `val_loss`, `accuracy`,
/// `val_accuracy`...); `None` when the epoch did not log it.
pub fn monitored(r: &EpochRecord, monitor: &str) -> Option<f64> {
    match monitor {
        "loss" => Some(r.loss),
        "val_loss" => r.val_loss,
        m => {
            let (list, name) = match m.strip_prefix("val_") {
                Some(n) => (&r.val_metrics, n),
                None => (&r.metrics, m),
            };
            list.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
        }
    }
}

/// Whether `value` improves on `best` in the setting's direction by more than `min_delta`.
pub fn improves(es: &EarlyStopping, value: f64, best: Option<f64>) -> bool {
    best.is_none_or(|best| match es.mode {
        MonitorMode::Max => value > best + es.min_delta,
        MonitorMode::Min => value < best - es.min_delta,
    })
}

/// Records the last epoch in `state`: an improvement resets the count (and returns `true`, the
/// caller then keeps the weights), otherwise the count of epochs without one grows.
pub fn record(es: &EarlyStopping, state: &mut TrainState) -> bool {
    let Some(last) = state.history.last() else {
        return false;
    };
    let Some(value) = monitored(last, &es.monitor) else {
        return false;
    };
    if improves(es, value, state.best) {
        state.best = Some(value);
        state.best_epoch = Some(last.epoch);
        state.since_best = 0;
        true
    } else {
        state.since_best += 1;
        false
    }
}

/// Whether `patience` epochs have passed without an improvement.
pub fn exhausted(es: &EarlyStopping, state: &TrainState) -> bool {
    state.since_best >= es.patience
}

/// The best epoch's weights for `restore_best`: the copy kept in memory, else (after a resume)
/// the save-best checkpoint's, in the order of `like`. `None` when neither holds them.
pub fn best_weights(
    kept: Option<ParamStore>,
    best_file: Option<&Path>,
    plan: &ExecutionPlan,
) -> Option<ParamStore> {
    if kept.is_some() {
        return kept;
    }
    let (_, tensors) = checkpoint::load(best_file?).ok()?;
    let mut by_name: std::collections::HashMap<String, _> = tensors.into_iter().collect();
    let ordered: Option<Vec<_>> = plan
        .params
        .iter()
        .map(|p| by_name.remove(&p.name))
        .collect();
    ParamStore::from_tensors(plan, ordered?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::optim::{Gd, GdConfig, Optimizer};

    fn record_with(loss: f64, val_accuracy: f64, epoch: u64) -> EpochRecord {
        EpochRecord {
            epoch,
            loss,
            metrics: vec![("accuracy".into(), 0.5)],
            val_loss: Some(loss * 2.0),
            val_metrics: vec![("accuracy".into(), val_accuracy)],
            lr: 0.1,
            samples_per_sec: 1.0,
            data_wait_fraction: 0.0,
            step_losses: Vec::new(),
        }
    }

    fn setting(monitor: &str, mode: MonitorMode, patience: u64, min_delta: f64) -> EarlyStopping {
        EarlyStopping {
            patience,
            monitor: monitor.into(),
            min_delta,
            mode,
            restore_best: true,
        }
    }

    #[test]
    fn monitored_values_come_from_the_right_list() {
        let r = record_with(0.3, 0.8, 1);
        assert_eq!(monitored(&r, "loss"), Some(0.3));
        assert_eq!(monitored(&r, "val_loss"), Some(0.6));
        assert_eq!(monitored(&r, "accuracy"), Some(0.5));
        assert_eq!(monitored(&r, "val_accuracy"), Some(0.8));
        assert_eq!(monitored(&r, "val_mae"), None);
    }

    #[test]
    fn improvement_follows_the_mode_and_min_delta() {
        let max = setting("val_accuracy", MonitorMode::Max, 2, 0.01);
        assert!(improves(&max, 0.5, None));
        assert!(improves(&max, 0.52, Some(0.5)));
        assert!(!improves(&max, 0.505, Some(0.5)));
        assert!(!improves(&max, 0.4, Some(0.5)));
        let min = setting("val_loss", MonitorMode::Min, 2, 0.0);
        assert!(improves(&min, 0.4, Some(0.5)));
        assert!(!improves(&min, 0.5, Some(0.5)));
    }

    #[test]
    fn the_best_epoch_is_tracked_and_patience_counts_epochs_without_improvement() {
        let es = setting("val_accuracy", MonitorMode::Max, 2, 0.0);
        let gd = Gd::new(GdConfig { weight_decay: 0.0 }).expect("valid");
        let mut state = TrainState::fresh("h".into(), "t".into(), Optimizer::Gd(gd));
        let mut kept = Vec::new();
        for (epoch, acc) in [(1, 0.5), (2, 0.7), (3, 0.6), (4, 0.7)] {
            state.history.push(record_with(1.0, acc, epoch));
            kept.push(record(&es, &mut state));
        }
        assert_eq!(kept, [true, true, false, false]);
        assert_eq!(state.best, Some(0.7));
        assert_eq!(state.best_epoch, Some(2));
        assert!(exhausted(&es, &state));
    }
}
