//! The metrics of an epoch in progress: their accumulators at the epoch's start (empty, or the
//! running totals a mid-epoch checkpoint saved) and their values.
//!
//! Input: the train block's metrics, the loop state (after a resume, its `partial_metrics`).
//! Output: one [`MetricAccumulator`] per metric, in the block's order. Invariant: an epoch
//! interrupted after any batch and resumed ends with the same totals as an uninterrupted one,
//! so its row in `metrics.csv` is the same; saved totals are untrusted and checked (E0808).

use super::checkpoint::TrainState;
use super::FitOptions;
use crate::diag::{codes, Diagnostic};
use crate::runtime::metrics::{Metric, MetricAccumulator};
use std::path::Path;

/// The accumulators the epoch starts with: the totals saved in `state` (taken out of it) when
/// it resumes an epoch in progress, else empty ones.
pub(super) fn start(
    options: &FitOptions,
    kinds: &[Metric],
    state: &mut TrainState,
) -> Result<Vec<MetricAccumulator>, Diagnostic> {
    let saved = std::mem::take(&mut state.partial_metrics);
    // A checkpoint written before the totals were saved has none: its epoch's metrics start
    // over, as they did then.
    if saved.is_empty() {
        return Ok(kinds.iter().map(|&m| MetricAccumulator::new(m)).collect());
    }
    let refuse = |why: String| {
        let path = options.checkpoint.as_deref().unwrap_or(Path::new(""));
        Diagnostic::error(
            codes::TRAIN_CHECKPOINT,
            format!("cannot resume from {}: {why}", path.display()),
        )
        .at_external(path.display().to_string(), 0, 0)
        .help("start a fresh run without `--resume`")
    };
    if state.next_batch == 0 || saved.len() != kinds.len() {
        return Err(refuse(format!(
            "it keeps {} running metrics at batch {} of its epoch, and the train block has {} metrics",
            saved.len(),
            state.next_batch,
            kinds.len()
        )));
    }
    kinds
        .iter()
        .zip(saved)
        .map(|(&m, s)| MetricAccumulator::restore(m, s).map_err(&refuse))
        .collect()
}

/// `(name, value)` of every metric with a result.
pub(super) fn results(accs: &[MetricAccumulator]) -> Vec<(String, f64)> {
    accs.iter()
        .filter_map(|a| {
            a.result()
                .map(|r| (a.metric().name().to_string(), f64::from(r)))
        })
        .collect()
}
