//! Optimizers: update rules over parameter tensors, with their per-parameter state.
//!
//! Input: the model's parameters (`&mut [ArrayViewMutD<f32>]`), their gradients of the same
//! shapes and the learning rate of this step (from a [`crate::runtime::schedule::Schedule`]).
//! Output: the parameters updated in place. State (velocities, moments) lives in the optimizer,
//! one slot per parameter index, created as zeros on the first step; it is `serde`-serializable,
//! and an optimizer restored from its serialized form continues bit-for-bit.
//!
//! Invariants: a step either updates every parameter or returns an error having touched
//! nothing; each parameter is updated independently, element by element, so results do not
//! depend on thread count; the arithmetic is f32 (as in PyTorch and Keras), with bias-correction
//! factors computed in f64.
//!
//! Update rules (`g` the gradient, `p` the parameter, `lr` the step's learning rate, `wd` the
//! weight decay, `t` the step count starting at 1):
//!
//! - **gd**: `g += wd*p; p -= lr*g`. Whether the gradient is over the full batch is the
//!   caller's business.
//! - **sgd** (PyTorch form, dampening 0): `g += wd*p; v = m*v + g; p -= lr*v`, or with nesterov
//!   `p -= lr*(g + m*v)`; momentum 0 is plain SGD. Keras instead keeps `v = m*v - lr*g;
//!   p += v` (nesterov `p += m*v - lr*g`): the two agree while `lr` is constant and differ once
//!   a schedule changes it, because Keras folds past learning rates into `v`.
//! - **adam** (Keras form, defaults `beta1 0.9, beta2 0.999, epsilon 1e-7`):
//!   `m += (1-b1)*(g-m); v += (1-b2)*(g²-v); a = lr*sqrt(1-b2^t)/(1-b1^t);
//!   p -= a*m/(sqrt(v)+eps)`; with amsgrad `vmax = max(vmax, v)` replaces `v` in the
//!   denominator. PyTorch divides by `sqrt(v/(1-b2^t)) + eps` instead (epsilon applied after bias
//!   correction, default 1e-8); the two differ only through where epsilon enters.
//!   Non-decoupled `weight_decay` adds `wd*p` to `g` (PyTorch `Adam(weight_decay)`).
//! - **adamw**: adam with decoupled weight decay, `p -= lr*wd*p` applied before the adam update
//!   (PyTorch `AdamW`, default `wd = 0.01`; Keras `AdamW` does the same with default 0.004).
//! - **rmsprop** (Keras form, defaults `rho 0.9, epsilon 1e-7, momentum 0`):
//!   `v = rho*v + (1-rho)*g²`; centered: `mg = rho*mg + (1-rho)*g; d = max(v - mg², 0)`, else
//!   `d = v`; `inc = lr*g/sqrt(d + eps)`; with momentum `b = momentum*b + inc; p -= b`, else
//!   `p -= inc`. PyTorch uses `sqrt(d) + eps` (epsilon outside the root, default 1e-8). The
//!   clamp at 0 only guards against rounding (`v - mg²` is a variance, never negative in exact
//!   arithmetic).
//!
//! For every optimizer except adamw, `weight_decay` is L2 regularisation added to the gradient.

mod adam;
mod error;
mod gd;
mod rmsprop;
mod sgd;
mod slots;
#[cfg(test)]
mod tests;

use ndarray::{ArrayViewD, ArrayViewMutD};
use serde::{Deserialize, Serialize};

pub use adam::{Adam, AdamConfig};
pub use error::{
    check_count, check_non_negative, check_positive, check_unit_closed, check_unit_half_open,
    check_unit_open, invalid, InvalidHyperparameter, OptimError,
};
pub use gd::{Gd, GdConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use sgd::{Sgd, SgdConfig};
pub use slots::Slots;

/// Any optimizer, with its state: what a checkpoint stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// Plain gradient descent.
    Gd(Gd),
    /// SGD with optional (nesterov) momentum.
    Sgd(Sgd),
    /// Adam, AdamW (decoupled weight decay) and AMSGrad.
    Adam(Adam),
    /// RMSprop, optionally centered and with momentum.
    RmsProp(RmsProp),
}

impl Optimizer {
    /// Applies one update with learning rate `lr` (finite, `>= 0`; a schedule may reach 0).
    pub fn step(
        &mut self,
        params: &mut [ArrayViewMutD<f32>],
        grads: &[ArrayViewD<f32>],
        lr: f32,
    ) -> Result<(), OptimError> {
        match self {
            Self::Gd(o) => o.step(params, grads, lr),
            Self::Sgd(o) => o.step(params, grads, lr),
            Self::Adam(o) => o.step(params, grads, lr),
            Self::RmsProp(o) => o.step(params, grads, lr),
        }
    }

    /// The per-parameter state, one named slot set at a time, in a fixed order: what a
    /// checkpoint stores as tensors (`optimizer.NAME.INDEX`) rather than as text.
    pub fn slots_mut(&mut self) -> Vec<(&'static str, &mut Slots)> {
        match self {
            Self::Gd(_) => Vec::new(),
            Self::Sgd(o) => o.slots_mut(),
            Self::Adam(o) => o.slots_mut(),
            Self::RmsProp(o) => o.slots_mut(),
        }
    }

    /// Re-checks the hyperparameters, e.g. after deserializing a hand-edited checkpoint.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        match self {
            Self::Gd(o) => o.config().validate(),
            Self::Sgd(o) => o.config().validate(),
            Self::Adam(o) => o.config().validate(),
            Self::RmsProp(o) => o.config().validate(),
        }
    }
}

/// Checks the step's inputs: the learning rate, and one gradient of the right shape per
/// parameter.
fn check_step_inputs(
    params: &[ArrayViewMutD<f32>],
    grads: &[ArrayViewD<f32>],
    lr: f32,
) -> Result<(), OptimError> {
    check_non_negative("lr", f64::from(lr))?;
    if params.len() != grads.len() {
        return Err(OptimError::CountMismatch {
            params: params.len(),
            grads: grads.len(),
        });
    }
    for (index, (p, g)) in params.iter().zip(grads).enumerate() {
        if p.shape() != g.shape() {
            return Err(OptimError::GradShape {
                index,
                param: p.shape().to_vec(),
                grad: g.shape().to_vec(),
            });
        }
    }
    Ok(())
}
