//! `reduce_on_plateau` in the training loop: after each epoch its link is active in, the
//! monitored value of that epoch updates the rule's state, which sets the next epoch's rate.
//!
//! Input: the checked chain (for the monitor's name), the runtime chain and the loop state.
//! Output: the updated [`PlateauState`] inside `TrainState`, which checkpoints carry, so a
//! resumed run continues with the same rate, best value, wait and cooldown.

use super::checkpoint::TrainState;
use super::early_stopping::monitored;
use crate::check::train_types::{CheckedTrain, Schedule as CheckedLink};
use crate::runtime::schedule::{Chain, PlateauState};

/// The state a run starts with: the rule's, when the chain has one.
pub fn start(chain: &Chain) -> Option<PlateauState> {
    chain.plateau().map(|(rule, _)| rule.start())
}

/// Checks a resumed state against the chain: present exactly when the chain has the rule, and
/// in range (every field of a checkpoint is untrusted).
pub fn check_resumed(chain: &Chain, state: &TrainState) -> Result<(), String> {
    match (chain.plateau(), &state.plateau) {
        (None, None) => Ok(()),
        (Some((rule, _)), Some(s)) => rule
            .check_state(s)
            .map_err(|e| format!("its reduce_on_plateau state is out of range: {e}")),
        (Some(_), None) => Err("it has no reduce_on_plateau state".to_string()),
        (None, Some(_)) => Err("it has a reduce_on_plateau state this schedule lacks".to_string()),
    }
}

/// Records the epoch just finished (the last of `state.history`) when the rule's link was
/// active in it.
pub fn after_epoch(train: &CheckedTrain, chain: &Chain, state: &mut TrainState) {
    let Some((rule, start)) = chain.plateau() else {
        return;
    };
    let monitor = train.schedule.iter().find_map(|l| match l {
        CheckedLink::ReduceOnPlateau(p) => Some(p.monitor.as_str()),
        _ => None,
    });
    // Links start at epoch boundaries: an epoch whose last step is past the start ran in it.
    if state.steps_done <= start {
        return;
    }
    let value = state
        .history
        .last()
        .zip(monitor)
        .and_then(|(r, m)| monitored(r, m));
    if let (Some(value), Some(s)) = (value, state.plateau.as_mut()) {
        rule.update(s, value);
    }
}
