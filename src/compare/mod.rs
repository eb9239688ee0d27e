//! Comparing runs: turns run folders' files (`metrics.csv`, and `trial.json` when an experiment
//! wrote one) into a ranked comparison, and the comparison into `results.csv`, `summary.csv`,
//! JSON lines, a terminal table and one self-contained HTML report. `modelc compare` and
//! `modelc experiment` both use it. Pure: strings in, strings out; the CLI reads and writes
//! the files.
//!
//! The API, in the order a caller uses it:
//!
//! - [`TrialInfo`]: what a trial folder records beside the usual run files, as `trial.json`
//!   ([`trial_info_json`] writes it, [`parse_trial_info`] reads it back);
//! - [`History`], [`parse_metrics_csv`]: a run's `metrics.csv` (coded errors, E1102);
//! - [`Run`]: one run's info and history; [`Select`] and [`Goal`]: which metric chooses the
//!   winner (by default the lowest `val_loss` when every run has one, else the lowest `loss`);
//! - [`compare`] → [`Comparison`]: the trials ranked, per-configuration mean and std over
//!   repeats, the winner;
//! - [`results_csv`], [`summary_csv`], [`json_lines`], [`table_text`], [`report_html`].
//!
//! Definitions. A trial's *score* is the best value of the select metric over its epochs, and
//! its *best epoch* the first epoch reaching it; its *best metrics* are every metric at that
//! epoch, its *final metrics* those of the last epoch. Trials rank by score (a trial without a
//! finite score ranks last), ties broken by trial name. A *configuration* is the trials that
//! differ only in their seed (repeats); it ranks by its trials' mean score, ties by name, and
//! the first configuration with a finite mean score is the *winner*. The std is the sample
//! standard deviation (divided by n − 1), 0 for a single trial. Every output is deterministic:
//! the same runs give the same bytes.
//!
//! Invariants: nothing here panics on any file's contents; the HTML table holds exactly the
//! cells of `results.csv` (one table model builds both); every text taken from a run is
//! escaped in the HTML.

mod chart;
mod error;
mod history;
mod html;
mod stats;
mod tables;
#[cfg(test)]
mod tests;

pub use error::CompareError;
pub use history::{parse_metrics_csv, History};
pub use html::report_html;
pub use stats::Stat;
pub use tables::{json_lines, results_csv, summary_csv, table_text};

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// What a trial folder records beside the usual run files, written by the experiment runner as
/// `trial.json` and read back by `compare`, so that a run folder knows its settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TrialInfo {
    /// The trial's name, unique in a comparison (`adam-b32-s2`).
    pub name: String,
    /// The configuration it repeats: trials differing only in their seed share it.
    pub configuration: String,
    /// The varied settings as written in the spec, in the experiment's order.
    pub settings: Vec<(String, String)>,
    pub seed: u64,
    /// Wall-clock seconds the trial took.
    pub seconds: f64,
}

impl TrialInfo {
    /// The info of a run folder without `trial.json`: its name is its trial and configuration,
    /// with no settings.
    pub fn bare(name: &str) -> Self {
        Self {
            name: name.to_string(),
            configuration: name.to_string(),
            settings: Vec::new(),
            seed: 0,
            seconds: f64::NAN,
        }
    }
}

/// Reads a `trial.json` (E1103 when it is not a trial record).
pub fn parse_trial_info(text: &str) -> Result<TrialInfo, CompareError> {
    serde_json::from_str(text).map_err(|e| CompareError::BadTrialInfo {
        problem: e.to_string(),
    })
}

/// A trial record as `trial.json` holds it (pretty JSON, a final newline).
pub fn trial_info_json(info: &TrialInfo) -> String {
    let mut text = serde_json::to_string_pretty(info).unwrap_or_default();
    text.push('\n');
    text
}

/// One run to compare: what it is and what it recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub info: TrialInfo,
    pub history: History,
}

/// Whether the select metric is better low (a loss) or high (an accuracy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Min,
    Max,
}

impl Goal {
    /// `min` or `max`, as the CLI and the spec write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Min => "min",
            Goal::Max => "max",
        }
    }

    /// Orders two finite values so that the better one comes first.
    fn order(self, a: f64, b: f64) -> Ordering {
        let ascending = a.partial_cmp(&b).unwrap_or(Ordering::Equal);
        match self {
            Goal::Min => ascending,
            Goal::Max => ascending.reverse(),
        }
    }

    /// Whether `a` is strictly better than `b`.
    fn better(self, a: f64, b: f64) -> bool {
        self.order(a, b) == Ordering::Less
    }
}

/// How the winner is chosen: a metric column of `metrics.csv` and its goal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Select {
    /// `None`: the loss, `val_loss` when every run records it, else `loss` (goal `Min`).
    pub metric: Option<String>,
    pub goal: Goal,
}

impl Default for Select {
    fn default() -> Self {
        Self {
            metric: None,
            goal: Goal::Min,
        }
    }
}

/// One trial's place in a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct TrialResult {
    /// 1-based.
    pub rank: usize,
    pub info: TrialInfo,
    pub history: History,
    /// Epochs recorded (rows of `metrics.csv`).
    pub epochs: usize,
    /// The epoch with the best select metric; `None` when it has no finite value.
    pub best_epoch: Option<u64>,
    /// The best select metric; `None` when it has no finite value.
    pub score: Option<f64>,
    /// Per metric of [`Comparison::metrics`]: the last epoch's value (`None`: not recorded).
    pub final_metrics: Vec<Option<f64>>,
    /// Per metric of [`Comparison::metrics`]: the value at the best epoch.
    pub best_metrics: Vec<Option<f64>>,
}

/// One configuration: its trials (repeats) and their mean and std.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigSummary {
    /// 1-based.
    pub rank: usize,
    pub configuration: String,
    /// The settings of its first trial.
    pub settings: Vec<(String, String)>,
    /// Its trials' indices into [`Comparison::trials`], in rank order.
    pub trials: Vec<usize>,
    pub seeds: Vec<u64>,
    /// Over its trials' scores.
    pub score: Stat,
    /// Per metric of [`Comparison::metrics`], over its trials' final values.
    pub final_metrics: Vec<Stat>,
    pub seconds: Stat,
}

/// Runs ranked and summarized: what every output is written from.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The select metric actually used (the default resolved).
    pub metric: String,
    pub goal: Goal,
    /// Every metric column any run recorded, in first-seen order (no `epoch`, `lr`,
    /// `samples_per_sec`).
    pub metrics: Vec<String>,
    /// Every setting name any trial varied, in first-seen order.
    pub settings: Vec<String>,
    /// The trials, best first.
    pub trials: Vec<TrialResult>,
    /// The configurations, best mean first.
    pub configurations: Vec<ConfigSummary>,
    /// The winning configuration's index into `configurations` (0 when there is one).
    pub winner: Option<usize>,
}

impl Comparison {
    /// The winning configuration.
    pub fn winning(&self) -> Option<&ConfigSummary> {
        self.winner.and_then(|w| self.configurations.get(w))
    }
}

/// Ranks `runs` by `select` and summarizes their configurations. E1104 when a run did not
/// record the select metric, E1105 when two runs share a trial name.
pub fn compare(runs: &[Run], select: &Select) -> Result<Comparison, CompareError> {
    let mut names: Vec<&str> = runs.iter().map(|r| r.info.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(CompareError::DuplicateTrial {
            name: w[0].to_string(),
        });
    }
    let metric = resolve_metric(runs, select)?;
    let mut metrics: Vec<String> = Vec::new();
    let mut settings: Vec<String> = Vec::new();
    for run in runs {
        for m in run.history.metric_names() {
            if !metrics.iter().any(|x| x == m) {
                metrics.push(m.to_string());
            }
        }
        for (k, _) in &run.info.settings {
            if !settings.contains(k) {
                settings.push(k.clone());
            }
        }
    }
    let mut trials: Vec<TrialResult> = runs
        .iter()
        .map(|run| trial_result(run, &metric, select.goal, &metrics))
        .collect();
    trials.sort_by(|a, b| {
        by_score(a.score, b.score, select.goal).then_with(|| a.info.name.cmp(&b.info.name))
    });
    for (i, t) in trials.iter_mut().enumerate() {
        t.rank = i + 1;
    }
    let configurations = stats::summarize(&trials, metrics.len(), select.goal);
    let winner = configurations
        .first()
        .filter(|c| c.score.mean.is_finite())
        .map(|_| 0);
    Ok(Comparison {
        metric,
        goal: select.goal,
        metrics,
        settings,
        trials,
        configurations,
        winner,
    })
}

/// The select metric's column: the one asked for (E1104 when a run lacks it), or the loss.
fn resolve_metric(runs: &[Run], select: &Select) -> Result<String, CompareError> {
    let Some(metric) = &select.metric else {
        let all_validated =
            !runs.is_empty() && runs.iter().all(|r| r.history.column("val_loss").is_some());
        return Ok(if all_validated { "val_loss" } else { "loss" }.to_string());
    };
    if let Some(run) = runs.iter().find(|r| r.history.column(metric).is_none()) {
        return Err(CompareError::UnknownMetric {
            metric: metric.clone(),
            trial: run.info.name.clone(),
            available: run.history.metric_names().map(str::to_string).collect(),
        });
    }
    Ok(metric.clone())
}

/// Orders two scores best first, a missing score last.
fn by_score(a: Option<f64>, b: Option<f64>, goal: Goal) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => goal.order(a, b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn trial_result(run: &Run, metric: &str, goal: Goal, metrics: &[String]) -> TrialResult {
    let h = &run.history;
    let best_row = h.column(metric).and_then(|col| {
        let mut best: Option<(usize, f64)> = None;
        for (i, row) in h.rows.iter().enumerate() {
            let v = row.get(col).copied().unwrap_or(f64::NAN);
            if v.is_finite() && best.is_none_or(|(_, b)| goal.better(v, b)) {
                best = Some((i, v));
            }
        }
        best
    });
    let value_at = |row: Option<usize>, m: &String| {
        let col = h.column(m)?;
        h.rows.get(row?)?.get(col).copied()
    };
    let last = h.rows.len().checked_sub(1);
    TrialResult {
        rank: 0,
        info: run.info.clone(),
        history: h.clone(),
        epochs: h.rows.len(),
        best_epoch: best_row.map(|(i, _)| h.epoch_of(i)),
        score: best_row.map(|(_, v)| v),
        final_metrics: metrics.iter().map(|m| value_at(last, m)).collect(),
        best_metrics: metrics
            .iter()
            .map(|m| value_at(best_row.map(|(i, _)| i), m))
            .collect(),
    }
}
