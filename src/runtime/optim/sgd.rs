//! SGD with momentum and nesterov, PyTorch form (dampening 0):
//! `g += wd*p; v = m*v + g; p -= lr*v` (nesterov: `p -= lr*(g + m*v)`).

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use serde::{Deserialize, Serialize};

use super::slots::Slots;
use super::{
    check_non_negative, check_step_inputs, check_unit_half_open, invalid, InvalidHyperparameter,
    OptimError,
};

/// Hyperparameters of [`Sgd`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Momentum `m` in `[0, 1)` (default 0: plain SGD).
    pub momentum: f32,
    /// Nesterov momentum; needs `momentum > 0` (as in PyTorch).
    pub nesterov: bool,
    /// L2 regularisation added to the gradient (`>= 0`, default 0).
    pub weight_decay: f32,
}

impl SgdConfig {
    /// Checks every field is in range.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        check_unit_half_open("momentum", f64::from(self.momentum))?;
        check_non_negative("weight_decay", f64::from(self.weight_decay))?;
        if self.nesterov && self.momentum == 0.0 {
            return Err(invalid("momentum", 0.0, "in (0, 1) when nesterov is on"));
        }
        Ok(())
    }
}

/// SGD with optional momentum; holds one velocity per parameter when momentum is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sgd {
    config: SgdConfig,
    velocity: Slots,
}

impl Sgd {
    /// The velocity slot (see [`super::Optimizer::slots_mut`]).
    pub fn slots_mut(&mut self) -> Vec<(&'static str, &mut Slots)> {
        vec![("velocity", &mut self.velocity)]
    }

    /// A validated optimizer with no state yet.
    pub fn new(config: SgdConfig) -> Result<Self, InvalidHyperparameter> {
        config.validate()?;
        Ok(Self {
            config,
            velocity: Slots::default(),
        })
    }

    /// Its hyperparameters.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// One update; see the module doc of [`super`].
    pub fn step(
        &mut self,
        params: &mut [ArrayViewMutD<f32>],
        grads: &[ArrayViewD<f32>],
        lr: f32,
    ) -> Result<(), OptimError> {
        self.config.validate()?;
        check_step_inputs(params, grads, lr)?;
        let SgdConfig {
            momentum: m,
            nesterov,
            weight_decay: wd,
        } = self.config;
        if m == 0.0 {
            for (p, g) in params.iter_mut().zip(grads) {
                Zip::from(p).and(g).for_each(|p, &g| {
                    let g = g + wd * *p;
                    *p -= lr * g;
                });
            }
            return Ok(());
        }
        self.velocity.prepare("velocity", params)?;
        let velocity = self.velocity.tensors_mut();
        for ((p, g), v) in params.iter_mut().zip(grads).zip(velocity) {
            Zip::from(p).and(g).and(v).for_each(|p, &g, v| {
                let g = g + wd * *p;
                *v = m * *v + g;
                let direction = if nesterov { g + m * *v } else { *v };
                *p -= lr * direction;
            });
        }
        Ok(())
    }
}
