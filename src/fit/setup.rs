//! From a checked `train` block to the runtime's loss, metrics, optimizer, schedule and clipping.
//!
//! Input: a [`CheckedTrain`] (every value already range-checked) and the number of steps per
//! epoch. Output: the runtime objects. Schedules are written in epochs in specs and run in steps.

use crate::check::train_types::{self as ck, CheckedTrain};
use crate::runtime::loss::Loss;
use crate::runtime::metrics::{Metric, Task};
use crate::runtime::optim::{
    Adam, AdamConfig, Gd, GdConfig, InvalidHyperparameter, Optimizer, RmsProp, RmsPropConfig, Sgd,
    SgdConfig,
};
use crate::runtime::schedule::{Chain, Decay, Link, Plateau, Schedule, Warmup};
use crate::runtime::train::Clip;

/// The runtime loss of a checked one.
pub fn loss(l: ck::Loss) -> Loss {
    let from_logits = l.from_logits;
    match l.kind {
        ck::LossKind::Mse => Loss::MeanSquaredError,
        ck::LossKind::Mae => Loss::MeanAbsoluteError,
        ck::LossKind::Huber => Loss::Huber {
            delta: l.delta as f32,
        },
        ck::LossKind::LogCosh => Loss::LogCosh,
        ck::LossKind::BinaryCrossentropy => Loss::BinaryCrossentropy { from_logits },
        ck::LossKind::CategoricalCrossentropy => Loss::CategoricalCrossentropy { from_logits },
        ck::LossKind::SparseCategoricalCrossentropy => {
            Loss::SparseCategoricalCrossentropy { from_logits }
        }
    }
}

/// What the targets of a batch go through before the loss, as Keras does it: binary
/// cross-entropy reads class ids 0/1 as float targets (one per output unit), and label smoothing
/// of binary and categorical cross-entropy moves float targets toward uniform (applied to the
/// validation loss too).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TargetPrep {
    Plain,
    /// Class ids become floats; then `t (1 - s) + s / 2`.
    Binary {
        smoothing: f32,
    },
    /// `t (1 - s) + s / K` over the last axis of `K` classes.
    Categorical {
        smoothing: f32,
    },
}

impl TargetPrep {
    /// What a checked loss asks for.
    pub fn of(l: ck::Loss) -> Self {
        let smoothing = l.label_smoothing as f32;
        match l.kind {
            ck::LossKind::BinaryCrossentropy => Self::Binary { smoothing },
            ck::LossKind::CategoricalCrossentropy if smoothing > 0.0 => {
                Self::Categorical { smoothing }
            }
            _ => Self::Plain,
        }
    }

    /// Float targets from class ids (`[n]` → `[n, 1]`), for binary cross-entropy.
    pub fn class_ids(self, ids: &[i64]) -> Option<ndarray::ArrayD<f32>> {
        let Self::Binary { .. } = self else {
            return None;
        };
        let values: Vec<f32> = ids.iter().map(|&c| c as f32).collect();
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[ids.len(), 1]), values).ok()
    }

    /// The smoothed float targets, or `None` when there is nothing to smooth.
    pub fn smooth(self, targets: &ndarray::ArrayViewD<f32>) -> Option<ndarray::ArrayD<f32>> {
        let (s, k) = match self {
            Self::Binary { smoothing } if smoothing > 0.0 => (smoothing, 2.0),
            Self::Categorical { smoothing } => (smoothing, *targets.shape().last()? as f32),
            _ => return None,
        };
        Some(targets.mapv(|t| t * (1.0 - s) + s / k))
    }
}

/// What the loss compares the output with, and how: the loss, its targets' preparation and
/// where the targets come from (labels, or the batch's own features for `target inputs`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    pub loss: Loss,
    pub prep: TargetPrep,
    pub target: ck::Target,
}

/// A checked train block's objective.
pub fn objective(t: &CheckedTrain) -> Objective {
    Objective {
        loss: loss(t.loss),
        prep: TargetPrep::of(t.loss),
        target: t.target,
    }
}

/// The runtime metrics, with `accuracy` resolved against the loss as Keras does.
pub fn metrics(t: &CheckedTrain) -> Vec<Metric> {
    metrics_for(t.loss, &t.metrics)
}

/// The runtime metrics of one output trained with `checked_loss` (`accuracy` resolved against it).
pub fn metrics_for(checked_loss: ck::Loss, metrics: &[ck::Metric]) -> Vec<Metric> {
    let l = loss(checked_loss);
    // `check` refuses the class metrics with a regression loss; the fallback is never used
    let task = Task::of(l).unwrap_or(Task::Binary { threshold: 0.5 });
    metrics
        .iter()
        .map(|m| match *m {
            ck::Metric::Accuracy => Metric::accuracy_for(l),
            ck::Metric::Mae => Metric::MeanAbsoluteError,
            ck::Metric::Mse => Metric::MeanSquaredError,
            ck::Metric::Precision => Metric::Precision(task),
            ck::Metric::Recall => Metric::Recall(task),
            ck::Metric::F1 => Metric::F1(task),
            ck::Metric::Auc => Metric::Auc(task),
            ck::Metric::TopKAccuracy { k } => Metric::TopKAccuracy {
                k: usize::try_from(k).unwrap_or(usize::MAX),
            },
        })
        .collect()
}

/// The optimizer, with fresh state.
pub fn optimizer(t: &CheckedTrain) -> Result<Optimizer, InvalidHyperparameter> {
    let c = t.optimizer.common;
    let wd = c.weight_decay as f32;
    Ok(match t.optimizer.kind {
        ck::OptimizerKind::Gd => Optimizer::Gd(Gd::new(GdConfig { weight_decay: wd })?),
        ck::OptimizerKind::Sgd { momentum, nesterov } => Optimizer::Sgd(Sgd::new(SgdConfig {
            momentum: momentum as f32,
            nesterov,
            weight_decay: wd,
        })?),
        ck::OptimizerKind::Adam {
            beta1,
            beta2,
            epsilon,
        } => Optimizer::Adam(Adam::new(adam(
            AdamConfig::default(),
            beta1,
            beta2,
            epsilon,
            wd,
        ))?),
        ck::OptimizerKind::AdamW {
            beta1,
            beta2,
            epsilon,
        } => Optimizer::Adam(Adam::new(adam(
            AdamConfig::adamw(),
            beta1,
            beta2,
            epsilon,
            wd,
        ))?),
        ck::OptimizerKind::RmsProp {
            rho,
            momentum,
            centered,
            epsilon,
        } => Optimizer::RmsProp(RmsProp::new(RmsPropConfig {
            rho: rho as f32,
            epsilon: epsilon as f32,
            momentum: momentum as f32,
            centered,
            weight_decay: wd,
        })?),
    })
}

/// Adam's configuration: `base` (Adam or AdamW) with the spec's betas, epsilon and decay.
fn adam(base: AdamConfig, beta1: f64, beta2: f64, epsilon: f64, weight_decay: f32) -> AdamConfig {
    AdamConfig {
        beta1: beta1 as f32,
        beta2: beta2 as f32,
        epsilon: epsilon as f32,
        weight_decay,
        ..base
    }
}

/// Gradient clipping from the optimizer's `clipnorm` / `clipvalue` (norm wins when both).
pub fn clip(t: &CheckedTrain) -> Option<Clip> {
    let c = t.optimizer.common;
    c.clipnorm
        .map(|n| Clip::GlobalNorm(n as f32))
        .or(c.clipvalue.map(|v| Clip::Value(v as f32)))
}

/// The learning-rate schedule in steps: the block's chain of links, each link's epochs turned
/// into steps (`cosine` without `epochs:` decays over the epochs the links before it leave).
pub fn schedule(t: &CheckedTrain, steps_per_epoch: u64) -> Result<Chain, InvalidHyperparameter> {
    let lr = t.optimizer.common.lr;
    let spe = steps_per_epoch.max(1);
    let mut links = Vec::with_capacity(t.schedule.len().max(1));
    let mut epochs_before = 0u64;
    for link in &t.schedule {
        let left = t.epochs.saturating_sub(epochs_before);
        links.push(schedule_link(link, lr, spe, left)?);
        epochs_before = epochs_before.saturating_add(link.epochs().unwrap_or(0));
    }
    if links.is_empty() {
        links.push(Link::Fixed {
            schedule: Schedule::constant(lr)?,
            steps: None,
        });
    }
    Chain::new(links)
}

/// One link of the chain; `epochs_left` is what the run has left when it starts.
fn schedule_link(
    link: &ck::Schedule,
    lr: f64,
    spe: u64,
    epochs_left: u64,
) -> Result<Link, InvalidHyperparameter> {
    let steps = link.epochs().map(|e| e.saturating_mul(spe));
    let schedule = match link {
        ck::Schedule::Step { every, factor } => {
            Schedule::step_every_epochs(lr, *every, spe, *factor)?
        }
        ck::Schedule::Exponential { rate, every } => Schedule::new(
            lr,
            Decay::Exponential {
                decay_steps: every.saturating_mul(spe),
                decay_rate: *rate,
                staircase: false,
            },
        )?,
        ck::Schedule::Cosine { epochs, min_lr } => {
            let epochs = epochs.unwrap_or(epochs_left);
            let alpha = (min_lr / lr).clamp(0.0, 1.0);
            Schedule::new(
                lr,
                Decay::Cosine {
                    decay_steps: epochs.saturating_mul(spe).max(1),
                    alpha,
                },
            )?
        }
        ck::Schedule::Warmup { epochs } => Schedule::constant(lr)?.with_warmup(Warmup {
            steps: epochs.saturating_mul(spe).max(1),
            start_lr: 0.0,
        })?,
        ck::Schedule::ReduceOnPlateau(p) => {
            return Ok(Link::Plateau(Plateau {
                initial_lr: lr,
                factor: p.factor,
                patience: p.patience,
                min_delta: p.min_delta,
                min_lr: p.min_lr,
                cooldown: p.cooldown,
                maximize: p.mode == ck::MonitorMode::Max,
            }))
        }
    };
    Ok(Link::Fixed { schedule, steps })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn label_smoothing_moves_targets_toward_uniform_as_keras() {
        // Keras: y * (1 - s) + s / K (categorical), y * (1 - s) + s / 2 (binary).
        let onehot = array![[0.0_f32, 1.0, 0.0, 0.0]].into_dyn();
        let s = TargetPrep::Categorical { smoothing: 0.2 }
            .smooth(&onehot.view())
            .unwrap();
        assert_eq!(s, array![[0.05_f32, 0.85, 0.05, 0.05]].into_dyn());
        let binary = TargetPrep::Binary { smoothing: 0.1 };
        let ids = binary.class_ids(&[1, 0]).unwrap();
        assert_eq!(ids, array![[1.0_f32], [0.0]].into_dyn());
        let s = binary.smooth(&ids.view()).unwrap();
        assert_eq!(s, array![[0.95_f32], [0.05]].into_dyn());
        assert_eq!(
            TargetPrep::Binary { smoothing: 0.0 }.smooth(&ids.view()),
            None
        );
        assert_eq!(TargetPrep::Plain.class_ids(&[1]), None);
    }

    /// The checked train block of a spec with this `schedule` line (lr 0.4, 10 epochs).
    fn checked(schedule: &str) -> CheckedTrain {
        use crate::diag::FileId;
        let text = format!(
            "model M(x: f32[N, 2]) -> f32[N, 1] {{\n dense(1)\n}}\n\
             data D {{\n source regression(n: 8, features: 2)\n batch 2\n}}\n\
             train M on D {{\n loss mse\n optimizer sgd(lr: 0.4)\n epochs 10\n\
             schedule {schedule}\n}}\n"
        );
        let parsed = crate::syntax::parse(
            FileId::from_index(0),
            &text,
            &crate::syntax::Limits::default(),
        );
        assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
        let checked = crate::check::check_file(FileId::from_index(0), &parsed.file);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        checked.trains.into_iter().next().unwrap()
    }

    #[test]
    fn a_checked_chain_becomes_links_in_steps() {
        // 3 steps per epoch; warmup(epochs: 1) ramps over steps 0-2 (0, 0.4/3, 0.8/3), cosine
        // without `epochs:` decays over the 9 epochs left (27 steps) to 0.04, then holds.
        let t = checked("warmup(epochs: 1) |> cosine(min_lr: 0.04)");
        let chain = schedule(&t, 3).unwrap();
        let rate = |s: u64| f64::from(chain.lr_at(s, None));
        let expected = |k: f64| 0.04 + 0.36 * 0.5 * (1.0 + (std::f64::consts::PI * k / 27.0).cos());
        for (step, want) in [
            (0, 0.0),
            (1, 0.4 / 3.0),
            (2, 0.8 / 3.0),
            (3, 0.4),
            (4, expected(1.0)),
            (16, expected(13.0)),
            (30, 0.04),
            (40, 0.04),
        ] {
            assert!(
                (rate(step) - want).abs() < 1e-7,
                "step {step}: {} vs {want}",
                rate(step)
            );
        }
        let t = checked("warmup(epochs: 2) |> reduce_on_plateau(monitor: loss, factor: 0.5)");
        let chain = schedule(&t, 3).unwrap();
        let (rule, start) = chain.plateau().unwrap();
        assert_eq!(
            (start, rule.factor, rule.patience, rule.initial_lr),
            (6, 0.5, 10, 0.4)
        );
        assert_eq!(
            (rule.min_delta, rule.min_lr, rule.cooldown, rule.maximize),
            (1e-4, 0.0, 0, false)
        );
    }
}
