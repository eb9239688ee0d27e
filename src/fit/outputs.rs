//! Training and measuring a model with several outputs, as Keras's `fit` does with a loss per
//! output: each step trains on `Σ wᵢ·lossᵢ` ([`Trainer::train_step_outputs`]) and the epoch
//! logs the total as `loss`, then each output's own loss (`digit_loss`) and metrics
//! (`digit_accuracy`), in the model's output order; validation adds `val_`.
//!
//! Input: the checked train block's [`OutputTrain`]s, batches whose labels hold one label set
//! per output (matched in order, checked by `check`, E0529). Output: step reports, per-output
//! running sums and named results. Invariant: the metrics are one flat list of accumulators,
//! output after output, so a mid-epoch checkpoint saves and restores them as for one output;
//! the per-output loss sums live in the loop state beside the total's.

use super::batch::with_output_batch;
use super::setup::{self, TargetPrep};
use super::{failed, train_error};
use crate::check::train_types::{CheckedTrain, OutputTrain};
use crate::data::loader::Batch;
use crate::diag::Diagnostic;
use crate::runtime::loss::{Loss, Targets};
use crate::runtime::metrics::{Metric, MetricAccumulator};
use crate::runtime::optim::Optimizer;
use crate::runtime::train::{Clip, OutputLoss, StepReport, Trainer};
use ndarray::ArrayViewD;

/// How each output of a model with several is trained and measured.
#[derive(Clone, Debug)]
pub struct Outputs {
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
struct Part {
    name: String,
    loss: Loss,
    prep: TargetPrep,
    weight: f32,
    metrics: Vec<Metric>,
}

impl Outputs {
    /// The outputs of a train block for a model with several; `None` for one output.
    pub fn of(train: &CheckedTrain) -> Option<Self> {
        (!train.outputs.is_empty()).then(|| Self::from_outputs(&train.outputs))
    }

    fn from_outputs(outputs: &[OutputTrain]) -> Self {
        Self {
            parts: outputs
                .iter()
                .map(|o| Part {
                    name: o.name.clone(),
                    loss: setup::loss(o.loss),
                    prep: TargetPrep::of(o.loss),
                    weight: o.weight as f32,
                    metrics: setup::metrics_for(o.loss, &o.metrics),
                })
                .collect(),
        }
    }

    /// Every output's metrics, output after output: the accumulators' order.
    pub fn metric_kinds(&self) -> Vec<Metric> {
        self.parts
            .iter()
            .flat_map(|p| p.metrics.iter().copied())
            .collect()
    }

    fn preps(&self) -> Vec<TargetPrep> {
        self.parts.iter().map(|p| p.prep).collect()
    }

    /// One training step on `batch`: updates `accs` (see [`Self::metric_kinds`]) with the step's
    /// outputs and adds each output's batch loss times the batch size to `loss_sums`.
    #[allow(clippy::too_many_arguments)]
    pub fn train_batch(
        &self,
        trainer: &mut Trainer,
        batch: &Batch,
        input_dtype: Option<crate::ir::DType>,
        optimizer: &mut Optimizer,
        step: (f32, Option<Clip>),
        accs: &mut [MetricAccumulator],
        loss_sums: &mut Vec<f64>,
    ) -> Result<StepReport, Diagnostic> {
        let n = batch.indices.len() as f64;
        with_output_batch(
            batch,
            input_dtype,
            &self.preps(),
            |inputs, targets, truth| {
                let parts: Vec<OutputLoss<'_>> = self
                    .parts
                    .iter()
                    .zip(targets)
                    .map(|(p, t)| OutputLoss {
                        targets: t.clone(),
                        loss: p.loss,
                        weight: p.weight,
                    })
                    .collect();
                let r = trainer
                    .train_step_outputs(inputs, &parts, optimizer, step)
                    .map_err(|e| train_error(&e))?;
                if let Ok(outs) = trainer.last_outputs() {
                    self.update(accs, &outs, truth);
                }
                loss_sums.resize(self.parts.len(), 0.0);
                for (s, &l) in loss_sums.iter_mut().zip(&r.losses) {
                    *s += f64::from(l) * n;
                }
                Ok(r.step)
            },
        )
    }

    /// Each output's accumulators see that output and its targets.
    fn update(&self, accs: &mut [MetricAccumulator], outs: &[ArrayViewD<f32>], truth: &[Targets]) {
        let mut at = 0;
        for ((p, out), t) in self.parts.iter().zip(outs).zip(truth) {
            for a in accs.iter_mut().skip(at).take(p.metrics.len()) {
                let _ = a.update(out, t);
            }
            at += p.metrics.len();
        }
    }

    /// `(name, value)` as logged: each output's mean loss over `samples` (`digit_loss`), then
    /// each output's metrics (`digit_accuracy`), in order.
    pub fn results(
        &self,
        accs: &[MetricAccumulator],
        loss_sums: &[f64],
        samples: u64,
    ) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .parts
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let sum = loss_sums.get(k).copied().unwrap_or(0.0);
                (format!("{}_loss", p.name), sum / samples.max(1) as f64)
            })
            .collect();
        let mut at = 0;
        for p in &self.parts {
            for a in accs.iter().skip(at).take(p.metrics.len()) {
                if let Some(r) = a.result() {
                    out.push((format!("{}_{}", p.name, a.metric().name()), f64::from(r)));
                }
            }
            at += p.metrics.len();
        }
        out
    }

    /// The total loss `Σ wᵢ·lossᵢ` and [`Self::results`] over `batches`, in inference semantics
    /// (the validation split, `modelc eval`). The total is the weighted sum of the outputs'
    /// mean losses, which is the mean of the batches' weighted sums.
    pub fn evaluate(
        &self,
        trainer: &mut Trainer,
        batches: impl Iterator<Item = Result<Batch, Diagnostic>>,
        input_dtype: Option<crate::ir::DType>,
    ) -> Result<(f64, Vec<(String, f64)>), Diagnostic> {
        let mut accs: Vec<MetricAccumulator> = self
            .metric_kinds()
            .into_iter()
            .map(MetricAccumulator::new)
            .collect();
        let mut sums = vec![0.0f64; self.parts.len()];
        let mut count = 0u64;
        let preps = self.preps();
        for batch in batches {
            let batch = batch?;
            let n = batch.indices.len() as u64;
            let losses =
                with_output_batch(&batch, input_dtype, &preps, |inputs, targets, truth| {
                    let outs = trainer
                        .forward_outputs(inputs, false)
                        .map_err(|e| train_error(&e))?;
                    self.update(&mut accs, &outs, truth);
                    self.parts
                        .iter()
                        .zip(&outs)
                        .zip(targets)
                        .map(|((p, out), t)| {
                            p.loss
                                .evaluate(out, t)
                                .map(|r| r.loss)
                                .map_err(|e| failed(&e.to_string()))
                        })
                        .collect::<Result<Vec<f32>, _>>()
                })?;
            for (s, l) in sums.iter_mut().zip(losses) {
                *s += f64::from(l) * n as f64;
            }
            count += n;
        }
        let results = self.results(&accs, &sums, count);
        let total = self
            .parts
            .iter()
            .zip(&results)
            .map(|(p, (_, mean))| f64::from(p.weight) * mean)
            .sum();
        Ok((total, results))
    }
}
