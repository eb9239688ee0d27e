//! Plain gradient descent: `g += wd*p; p -= lr*g`. No state.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use serde::{Deserialize, Serialize};

use super::{check_non_negative, check_step_inputs, InvalidHyperparameter, OptimError};

/// Hyperparameters of [`Gd`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GdConfig {
    /// L2 regularisation added to the gradient (`>= 0`, default 0).
    pub weight_decay: f32,
}

impl GdConfig {
    /// Checks every field is in range.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        check_non_negative("weight_decay", f64::from(self.weight_decay))
    }
}

/// Plain gradient descent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gd {
    config: GdConfig,
}

impl Gd {
    /// A validated optimizer.
    pub fn new(config: GdConfig) -> Result<Self, InvalidHyperparameter> {
        config.validate()?;
        Ok(Self { config })
    }

    /// Its hyperparameters.
    pub fn config(&self) -> &GdConfig {
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
        let wd = self.config.weight_decay;
        for (p, g) in params.iter_mut().zip(grads) {
            Zip::from(p).and(g).for_each(|p, &g| {
                let g = g + wd * *p;
                *p -= lr * g;
            });
        }
        Ok(())
    }
}
