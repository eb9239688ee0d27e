//! From a checked `train` block to the runtime's loss, metrics, optimizer, schedule and clipping.
//!
//! Input: a [`CheckedTrain`] (every value already range-checked) and the number of steps per
//! epoch. Output: the runtime objects. Schedules are written in epochs in specs and run in steps.

use crate::check::train_types::{self as ck, CheckedTrain};
use crate::runtime::loss::Loss;
use crate::runtime::metrics::Metric;
use crate::runtime::optim::{
    Adam, AdamConfig, Gd, GdConfig, InvalidHyperparameter, Optimizer, RmsProp, RmsPropConfig, Sgd,
    SgdConfig,
};
use crate::runtime::schedule::{Decay, Schedule, Warmup};
use crate::runtime::train::Clip;

/// The runtime loss of a checked one.
pub fn loss(l: ck::Loss) -> Loss {
    let from_logits = l.from_logits;
    match l.kind {
        ck::LossKind::Mse => Loss::MeanSquaredError,
        ck::LossKind::Mae => Loss::MeanAbsoluteError,
        ck::LossKind::BinaryCrossentropy => Loss::BinaryCrossentropy { from_logits },
        ck::LossKind::CategoricalCrossentropy => Loss::CategoricalCrossentropy { from_logits },
        ck::LossKind::SparseCategoricalCrossentropy => {
            Loss::SparseCategoricalCrossentropy { from_logits }
        }
    }
}

/// The runtime metrics, with `accuracy` resolved against the loss as Keras does.
pub fn metrics(t: &CheckedTrain) -> Vec<Metric> {
    let l = loss(t.loss);
    t.metrics
        .iter()
        .map(|m| match m {
            ck::Metric::Accuracy => Metric::accuracy_for(l),
            ck::Metric::Mae => Metric::MeanAbsoluteError,
            ck::Metric::Mse => Metric::MeanSquaredError,
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

/// The learning-rate schedule in steps.
pub fn schedule(t: &CheckedTrain, steps_per_epoch: u64) -> Result<Schedule, InvalidHyperparameter> {
    let lr = t.optimizer.common.lr;
    let spe = steps_per_epoch.max(1);
    match t.schedule {
        None => Schedule::constant(lr),
        Some(ck::Schedule::Step { every, factor }) => {
            Schedule::step_every_epochs(lr, every, spe, factor)
        }
        Some(ck::Schedule::Exponential { rate, every }) => Schedule::new(
            lr,
            Decay::Exponential {
                decay_steps: every.saturating_mul(spe),
                decay_rate: rate,
                staircase: false,
            },
        ),
        Some(ck::Schedule::Cosine { epochs, min_lr }) => {
            let epochs = epochs.unwrap_or(t.epochs);
            let alpha = (min_lr / lr).clamp(0.0, 1.0);
            Schedule::new(
                lr,
                Decay::Cosine {
                    decay_steps: epochs.saturating_mul(spe).max(1),
                    alpha,
                },
            )
        }
        Some(ck::Schedule::Warmup { epochs }) => Schedule::constant(lr)?.with_warmup(Warmup {
            steps: epochs.saturating_mul(spe).max(1),
            start_lr: 0.0,
        }),
    }
}
