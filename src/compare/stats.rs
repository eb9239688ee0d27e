//! Means and standard deviations over repeats: a configuration's scores, final metrics and
//! times, and its curves epoch by epoch (mean, min and max over the trials that reached it).

use super::{by_score, ConfigSummary, Goal, TrialResult};

/// The mean and sample standard deviation of the finite values among some numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    /// `NaN` when no value is finite.
    pub mean: f64,
    /// Divided by n − 1; 0 for a single value, `NaN` for none.
    pub std: f64,
    /// How many finite values there were.
    pub n: usize,
}

impl Stat {
    /// Over the finite values of `values`, summed in order.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let finite: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let n = finite.len();
        if n == 0 {
            return Self {
                mean: f64::NAN,
                std: f64::NAN,
                n,
            };
        }
        let mean = finite.iter().sum::<f64>() / n as f64;
        let std = if n == 1 {
            0.0
        } else {
            let squares: f64 = finite.iter().map(|v| (v - mean) * (v - mean)).sum();
            (squares / (n - 1) as f64).sqrt()
        };
        Self { mean, std, n }
    }

    fn optional(values: impl IntoIterator<Item = Option<f64>>) -> Self {
        Self::of(values.into_iter().map(|v| v.unwrap_or(f64::NAN)))
    }
}

/// Groups ranked trials by configuration (in order of their best trial) and ranks the groups by
/// mean score, ties by name.
pub(super) fn summarize(
    trials: &[TrialResult],
    n_metrics: usize,
    goal: Goal,
) -> Vec<ConfigSummary> {
    let mut groups: Vec<ConfigSummary> = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        let at = groups
            .iter()
            .position(|g| g.configuration == t.info.configuration);
        if let Some(g) = at.and_then(|k| groups.get_mut(k)) {
            g.trials.push(i);
            g.seeds.push(t.info.seed);
        } else {
            groups.push(ConfigSummary {
                rank: 0,
                configuration: t.info.configuration.clone(),
                settings: t.info.settings.clone(),
                trials: vec![i],
                seeds: vec![t.info.seed],
                score: Stat::of([]),
                final_metrics: Vec::new(),
                seconds: Stat::of([]),
            });
        }
    }
    for g in &mut groups {
        let members: Vec<&TrialResult> = g.trials.iter().filter_map(|&i| trials.get(i)).collect();
        g.score = Stat::optional(members.iter().map(|t| t.score));
        g.seconds = Stat::of(members.iter().map(|t| t.info.seconds));
        g.final_metrics = (0..n_metrics)
            .map(|k| {
                Stat::optional(
                    members
                        .iter()
                        .map(|t| t.final_metrics.get(k).copied().flatten()),
                )
            })
            .collect();
    }
    let finite = |s: &Stat| Some(s.mean).filter(|m| m.is_finite());
    groups.sort_by(|a, b| {
        by_score(finite(&a.score), finite(&b.score), goal)
            .then_with(|| a.configuration.cmp(&b.configuration))
    });
    for (i, g) in groups.iter_mut().enumerate() {
        g.rank = i + 1;
    }
    groups
}

/// One configuration's curve of one metric: per epoch (row) index, the mean, min and max over
/// the trials that recorded a finite value there (`None` where none did).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Band {
    pub points: Vec<Option<(f64, f64, f64)>>,
}

/// The band of `metric` over some trials.
pub(super) fn band(trials: &[&TrialResult], metric: &str) -> Band {
    let series: Vec<Vec<f64>> = trials
        .iter()
        .filter_map(|t| t.history.series(metric))
        .collect();
    let len = series.iter().map(Vec::len).max().unwrap_or(0);
    let points = (0..len)
        .map(|i| {
            let at: Vec<f64> = series
                .iter()
                .filter_map(|s| s.get(i).copied())
                .filter(|v| v.is_finite())
                .collect();
            let stat = Stat::of(at.iter().copied());
            let lo = at.iter().copied().reduce(f64::min)?;
            let hi = at.iter().copied().reduce(f64::max)?;
            Some((stat.mean, lo, hi))
        })
        .collect();
    Band { points }
}
