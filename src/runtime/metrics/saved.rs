//! An accumulator's running totals as data, so that a checkpoint taken in the middle of an
//! epoch resumes its metrics exactly (the epoch's row in `metrics.csv` is the same as an
//! uninterrupted run's).
//!
//! Input: a [`MetricAccumulator`]. Output: a [`SavedMetric`]: the small totals (a mean's sum
//! and count, a matrix's class count) as serde data for the checkpoint's header, and the large
//! ones (confusion counts, AUC's scores) as [`Column`]s the checkpoint stores as tensors.
//! Invariant: [`MetricAccumulator::restore`] of [`MetricAccumulator::save`] is the same
//! accumulator, and a restored accumulator is one that [`MetricAccumulator::update`] could have
//! built: every saved value is untrusted and checked.

use serde::{Deserialize, Serialize};

use super::auc::Scores;
use super::confusion::ConfusionMatrix;
use super::{Metric, MetricAccumulator, State};

/// One large saved value: a flat list, stored as a 1-D tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    F32(Vec<f32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
}

/// The small totals of an accumulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Totals {
    /// A sum of per-entry values and the entry count.
    Mean { total: f64, count: u64 },
    /// Confusion counts over `classes` (the counts are the column `counts`); `None` before
    /// the first batch.
    Confusion(Option<(usize, bool)>),
    /// AUC scores (the columns `scores` and `positive` or `truth`); `classes` 0 for binary.
    Scores { classes: usize },
}

/// An accumulator's state, with its large columns held apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedMetric {
    pub metric: Metric,
    pub totals: Totals,
    /// `(name, values)`: kept out of the header, stored by the checkpoint as tensors.
    #[serde(skip)]
    pub columns: Vec<(String, Column)>,
}

impl SavedMetric {
    /// Takes the named column out; `None` when it is missing or of another kind.
    fn take(&mut self, name: &str) -> Option<Column> {
        let at = self.columns.iter().position(|(n, _)| n == name)?;
        Some(self.columns.remove(at).1)
    }
}

/// The column `name` of `saved` as `T`, or why not.
fn column<T>(
    saved: &mut SavedMetric,
    name: &str,
    pick: fn(Column) -> Option<Vec<T>>,
) -> Result<Vec<T>, String> {
    saved.take(name).and_then(pick).ok_or_else(|| {
        format!(
            "its {} has no column `{name}` of the right kind",
            saved.metric.name()
        )
    })
}

impl MetricAccumulator {
    /// The running totals, for a checkpoint.
    pub fn save(&self) -> SavedMetric {
        let (totals, columns) = match &self.state {
            State::Mean { total, count } => (
                Totals::Mean {
                    total: *total,
                    count: *count,
                },
                Vec::new(),
            ),
            State::Confusion(None) => (Totals::Confusion(None), Vec::new()),
            State::Confusion(Some(m)) => {
                let (classes, binary, counts) = m.parts();
                (
                    Totals::Confusion(Some((classes, binary))),
                    vec![("counts".to_string(), Column::U64(counts.to_vec()))],
                )
            }
            State::Scores(s) => {
                let (classes, scores, positive, truth) = s.parts();
                let mut columns = vec![("scores".to_string(), Column::F32(scores.to_vec()))];
                if classes == 0 {
                    columns.push(("positive".to_string(), Column::Bool(positive.to_vec())));
                } else {
                    let truth = truth.iter().map(|&c| c as u64).collect();
                    columns.push(("truth".to_string(), Column::U64(truth)));
                }
                (Totals::Scores { classes }, columns)
            }
        };
        SavedMetric {
            metric: self.metric,
            totals,
            columns,
        }
    }

    /// The accumulator of `metric` saved in `saved` (read from an untrusted file): refused
    /// with the reason when it is another metric's, or holds what no run could have counted.
    pub fn restore(metric: Metric, mut saved: SavedMetric) -> Result<Self, String> {
        if saved.metric != metric {
            return Err(format!(
                "its running {} is not this run's {}",
                saved.metric.name(),
                metric.name()
            ));
        }
        let fresh = Self::new(metric);
        let state = match (&fresh.state, saved.totals.clone()) {
            (State::Mean { .. }, Totals::Mean { total, count }) => {
                let bounded =
                    !matches!(metric, Metric::MeanAbsoluteError | Metric::MeanSquaredError);
                if !(total.is_finite() && total >= 0.0) || (bounded && total > count as f64) {
                    return Err(format!(
                        "its running {} totals {total} over {count} entries",
                        metric.name()
                    ));
                }
                State::Mean { total, count }
            }
            (State::Confusion(_), Totals::Confusion(None)) => State::Confusion(None),
            (State::Confusion(_), Totals::Confusion(Some((classes, binary)))) => {
                let counts = column(&mut saved, "counts", |c| match c {
                    Column::U64(v) => Some(v),
                    _ => None,
                })?;
                let m = ConfusionMatrix::from_parts(classes, binary, counts)
                    .map_err(|e| format!("its running {} has {e}", metric.name()))?;
                State::Confusion(Some(m))
            }
            (State::Scores(_), Totals::Scores { classes }) => {
                let scores = column(&mut saved, "scores", |c| match c {
                    Column::F32(v) => Some(v),
                    _ => None,
                })?;
                let (positive, truth) = if classes == 0 {
                    let p = column(&mut saved, "positive", |c| match c {
                        Column::Bool(v) => Some(v),
                        _ => None,
                    })?;
                    (p, Vec::new())
                } else {
                    let t = column(&mut saved, "truth", |c| match c {
                        Column::U64(v) => Some(v),
                        _ => None,
                    })?;
                    let t: Option<Vec<usize>> =
                        t.into_iter().map(|c| usize::try_from(c).ok()).collect();
                    (Vec::new(), t.unwrap_or_default())
                };
                State::Scores(Scores::from_parts(classes, scores, positive, truth)?)
            }
            _ => {
                return Err(format!(
                    "its running {} is of another kind of totals",
                    metric.name()
                ))
            }
        };
        if let Some((name, _)) = saved.columns.first() {
            return Err(format!(
                "its running {} has a column `{name}` it does not keep",
                metric.name()
            ));
        }
        Ok(Self { metric, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::loss::{SparseLabels, Targets};
    use ndarray::{array, ArrayD};

    /// Accumulators of every kind of totals after one batch each: binary and multi-class.
    fn accumulated() -> Vec<MetricAccumulator> {
        let binary = super::super::Task::Binary { threshold: 0.0 };
        let multi = super::super::Task::MultiClass { from_logits: true };
        let logits: ArrayD<f32> = array![[0.3_f32], [-1.0], [2.0], [0.1]].into_dyn();
        let truth: ArrayD<f32> = array![[1.0_f32], [0.0], [1.0], [0.0]].into_dyn();
        let rows: ArrayD<f32> = array![[0.1_f32, 2.0, -1.0], [1.5, 0.2, 0.0]].into_dyn();
        let labels: ArrayD<i64> = array![1_i64, 2].into_dyn();
        let mut out = Vec::new();
        for metric in [
            Metric::BinaryAccuracy { threshold: 0.0 },
            Metric::Auc(binary),
            Metric::F1(binary),
        ] {
            let mut a = MetricAccumulator::new(metric);
            a.update(&logits.view(), &Targets::Dense(truth.view()))
                .unwrap();
            out.push(a);
        }
        for metric in [
            Metric::SparseCategoricalAccuracy,
            Metric::Auc(multi),
            Metric::Precision(multi),
        ] {
            let mut a = MetricAccumulator::new(metric);
            let sparse = Targets::Sparse(SparseLabels::I64(labels.view()));
            a.update(&rows.view(), &sparse).unwrap();
            out.push(a);
        }
        out.push(MetricAccumulator::new(Metric::Recall(multi)));
        out
    }

    #[test]
    fn saved_totals_come_back_as_the_same_accumulator() {
        for a in accumulated() {
            let back = MetricAccumulator::restore(a.metric(), a.save()).unwrap();
            assert_eq!(back, a);
            assert_eq!(back.result(), a.result());
        }
    }

    /// A change made to saved totals by hand.
    type Craft = fn(&mut SavedMetric);

    #[test]
    fn crafted_totals_are_refused() {
        let accs = accumulated();
        let by_metric = |m: fn(&Metric) -> bool| {
            accs.iter()
                .find(|a| m(&a.metric()))
                .map(MetricAccumulator::save)
                .unwrap()
        };
        let accuracy = by_metric(|m| matches!(m, Metric::BinaryAccuracy { .. }));
        let auc = by_metric(|m| matches!(m, Metric::Auc(super::super::Task::Binary { .. })));
        let multi_auc =
            by_metric(|m| matches!(m, Metric::Auc(super::super::Task::MultiClass { .. })));
        let f1 = by_metric(|m| matches!(m, Metric::F1(_)));
        let cases: [(&SavedMetric, &str, Craft); 8] = [
            (&accuracy, "totals 5 over 4", |s| {
                s.totals = Totals::Mean {
                    total: 5.0,
                    count: 4,
                };
            }),
            (&accuracy, "totals NaN", |s| {
                s.totals = Totals::Mean {
                    total: f64::NAN,
                    count: 4,
                };
            }),
            (&accuracy, "another kind", |s| {
                s.totals = Totals::Scores { classes: 0 }
            }),
            (&auc, "do not fit together", |s| {
                s.columns.retain(|(n, _)| n != "positive");
                s.columns
                    .push(("positive".into(), Column::Bool(vec![true])));
            }),
            (&auc, "no column `scores`", |s| {
                s.columns.retain(|(n, _)| n != "scores");
            }),
            (&multi_auc, "do not fit together", |s| {
                s.columns.retain(|(n, _)| n != "truth");
                s.columns.push(("truth".into(), Column::U64(vec![0, 3])));
            }),
            (&f1, "with 3 counts", |s| {
                s.columns = vec![("counts".into(), Column::U64(vec![1, 2, 3]))];
            }),
            (&f1, "does not keep", |s| {
                s.columns.push(("extra".into(), Column::F32(vec![1.0])));
            }),
        ];
        for (saved, expected, craft) in cases {
            let mut s = saved.clone();
            craft(&mut s);
            let e = MetricAccumulator::restore(s.metric, s).unwrap_err();
            assert!(e.contains(expected), "{expected}: {e}");
        }
        let e = MetricAccumulator::restore(Metric::MeanAbsoluteError, accuracy).unwrap_err();
        assert!(e.contains("not this run's mae"), "{e}");
    }
}
