//! RMSprop (Keras form): `v = rho*v + (1-rho)*g²; p -= lr*g/sqrt(v + eps)`, optionally centered
//! (subtracting the squared running mean of `g`) and with momentum on the increment.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use serde::{Deserialize, Serialize};

use super::slots::Slots;
use super::{
    check_non_negative, check_positive, check_step_inputs, check_unit_half_open, check_unit_open,
    InvalidHyperparameter, OptimError,
};

/// Hyperparameters of [`RmsProp`]; `Default` is Keras `RMSprop`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RmsPropConfig {
    /// Decay of the running mean of `g²`, in `(0, 1)` (default 0.9).
    pub rho: f32,
    /// Added to the mean square under the root, `> 0` (default 1e-7).
    pub epsilon: f32,
    /// Momentum on the increment, in `[0, 1)` (default 0).
    pub momentum: f32,
    /// Divide by the running variance of `g` rather than its mean square.
    pub centered: bool,
    /// L2 regularisation added to the gradient (`>= 0`, default 0).
    pub weight_decay: f32,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        Self {
            rho: 0.9,
            epsilon: 1e-7,
            momentum: 0.0,
            centered: false,
            weight_decay: 0.0,
        }
    }
}

impl RmsPropConfig {
    /// Checks every field is in range.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        check_unit_open("rho", f64::from(self.rho))?;
        check_positive("epsilon", f64::from(self.epsilon))?;
        check_unit_half_open("momentum", f64::from(self.momentum))?;
        check_non_negative("weight_decay", f64::from(self.weight_decay))
    }
}

/// RMSprop with its mean square, mean gradient (centered) and momentum buffers per parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmsProp {
    config: RmsPropConfig,
    mean_square: Slots,
    /// Running mean of `g`; used only when centered.
    mean_grad: Slots,
    /// Momentum buffer; used only when momentum > 0.
    momentum: Slots,
}

impl RmsProp {
    /// The state slots by name, in a fixed order (see [`super::Optimizer::slots_mut`]).
    pub fn slots_mut(&mut self) -> Vec<(&'static str, &mut Slots)> {
        vec![
            ("mean_square", &mut self.mean_square),
            ("mean_grad", &mut self.mean_grad),
            ("momentum", &mut self.momentum),
        ]
    }

    /// A validated optimizer with no state yet.
    pub fn new(config: RmsPropConfig) -> Result<Self, InvalidHyperparameter> {
        config.validate()?;
        Ok(Self {
            config,
            mean_square: Slots::default(),
            mean_grad: Slots::default(),
            momentum: Slots::default(),
        })
    }

    /// Its hyperparameters.
    pub fn config(&self) -> &RmsPropConfig {
        &self.config
    }

    /// One update; see the module doc of [`super`].
    pub fn step(
        &mut self,
        params: &mut [ArrayViewMutD<f32>],
        grads: &[ArrayViewD<f32>],
        lr: f32,
    ) -> Result<(), OptimError> {
        let c = self.config;
        c.validate()?;
        check_step_inputs(params, grads, lr)?;
        self.mean_square.prepare("mean_square", params)?;
        if c.centered {
            self.mean_grad.prepare("mean_grad", params)?;
        }
        if c.momentum > 0.0 {
            self.momentum.prepare("momentum", params)?;
        }
        let (rho, eps, mu, wd) = (c.rho, c.epsilon, c.momentum, c.weight_decay);
        // The increment `lr*g/sqrt(d + eps)`, updating the mean square (and the mean gradient
        // when given, i.e. centered).
        let increment = |p: f32, g: f32, v: &mut f32, mean_grad: Option<&mut f32>| {
            let g = g + wd * p;
            *v = rho * *v + (1.0 - rho) * g * g;
            let denominator = match mean_grad {
                Some(mg) => {
                    *mg = rho * *mg + (1.0 - rho) * g;
                    (*v - *mg * *mg).max(0.0)
                }
                None => *v,
            };
            lr * g / (denominator + eps).sqrt()
        };
        let squares = self.mean_square.tensors_mut();
        let means = self.mean_grad.tensors_mut();
        let buffers = self.momentum.tensors_mut();
        for (index, ((p, g), v)) in params.iter_mut().zip(grads).zip(squares).enumerate() {
            let mean_grad = means.get_mut(index).filter(|_| c.centered);
            let buffer = buffers.get_mut(index).filter(|_| mu > 0.0);
            let zip = Zip::from(p).and(g).and(v);
            match (mean_grad, buffer) {
                (Some(mg), Some(b)) => zip.and(mg).and(b).for_each(|p, &g, v, mg, b| {
                    *b = mu * *b + increment(*p, g, v, Some(mg));
                    *p -= *b;
                }),
                (Some(mg), None) => zip.and(mg).for_each(|p, &g, v, mg| {
                    *p -= increment(*p, g, v, Some(mg));
                }),
                (None, Some(b)) => zip.and(b).for_each(|p, &g, v, b| {
                    *b = mu * *b + increment(*p, g, v, None);
                    *p -= *b;
                }),
                (None, None) => zip.for_each(|p, &g, v| {
                    *p -= increment(*p, g, v, None);
                }),
            }
        }
        Ok(())
    }
}
