//! Reducing the learning rate when a monitored value stops improving (Keras's
//! `ReduceLROnPlateau`), once per epoch.
//!
//! Input: a [`Plateau`] (its validated settings) and, after each epoch it is active in, the
//! monitored value. Output: the learning rate of the next epoch, in [`PlateauState`]. The state
//! (current rate, best value, epochs waited, cooldown left) is all the rule remembers, so a
//! checkpoint that stores it lets a resumed run make the same decisions.
//!
//! Per epoch, as Keras: if a cooldown is running, count it down and reset the wait; if the value
//! improves on the best (by more than `min_delta`, in the mode's direction), it becomes the best
//! and the wait resets; otherwise, out of cooldown, the wait grows, and when it reaches
//! `patience` a rate above `min_lr` becomes `max(rate * factor, min_lr)`, the cooldown starts
//! and the wait resets. The rate is kept in f64 and rounded to f32 when a step uses it.

use serde::{Deserialize, Serialize};

use crate::runtime::optim::{
    check_non_negative, check_positive, check_unit_open, invalid, InvalidHyperparameter,
};

/// The rule's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Plateau {
    /// The rate the rule starts from (`> 0`).
    pub initial_lr: f64,
    /// The factor of a reduction, in `(0, 1)`.
    pub factor: f64,
    /// Epochs without improvement before a reduction.
    pub patience: u64,
    /// The least change that counts as an improvement (`>= 0`).
    pub min_delta: f64,
    /// The rate is never reduced below this (`>= 0`).
    pub min_lr: f64,
    /// Epochs after a reduction during which no epoch counts as waiting.
    pub cooldown: u64,
    /// Larger values are better (`mode: max`).
    pub maximize: bool,
}

/// What the rule remembers between epochs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    /// The rate of the next epoch.
    pub lr: f64,
    /// The best monitored value so far (`None` before the first: Keras's ±infinity).
    pub best: Option<f64>,
    /// Epochs since the best, outside cooldowns.
    pub wait: u64,
    /// Epochs of cooldown left.
    pub cooldown: u64,
}

impl Plateau {
    /// Checks every field is in range.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        check_positive("lr", self.initial_lr)?;
        check_unit_open("factor", self.factor)?;
        check_non_negative("min_delta", self.min_delta)?;
        check_non_negative("min_lr", self.min_lr)
    }

    /// The state before the first epoch.
    pub fn start(&self) -> PlateauState {
        PlateauState {
            lr: self.initial_lr,
            best: None,
            wait: 0,
            cooldown: 0,
        }
    }

    /// Checks a state read from a checkpoint (untrusted): a finite rate in `[0, initial]`.
    pub fn check_state(&self, state: &PlateauState) -> Result<(), InvalidHyperparameter> {
        check_non_negative("lr", state.lr)?;
        if state.lr > self.initial_lr || state.cooldown > self.cooldown {
            return Err(invalid("lr", state.lr, "at most the initial rate"));
        }
        Ok(())
    }

    /// Whether `value` improves on `best`.
    fn improves(&self, value: f64, best: Option<f64>) -> bool {
        let Some(best) = best else {
            // Keras starts from ±infinity: any number improves on it, NaN does not.
            return !value.is_nan();
        };
        if self.maximize {
            value > best + self.min_delta
        } else {
            value < best - self.min_delta
        }
    }

    /// Records the monitored value of an epoch; returns whether the rate was reduced.
    pub fn update(&self, state: &mut PlateauState, value: f64) -> bool {
        if state.cooldown > 0 {
            state.cooldown -= 1;
            state.wait = 0;
        }
        if self.improves(value, state.best) {
            state.best = Some(value);
            state.wait = 0;
            return false;
        }
        if state.cooldown > 0 {
            return false;
        }
        state.wait += 1;
        if state.wait < self.patience || state.lr <= self.min_lr {
            return false;
        }
        state.lr = (state.lr * self.factor).max(self.min_lr);
        state.cooldown = self.cooldown;
        state.wait = 0;
        true
    }
}

#[cfg(test)]
#[path = "plateau_tests.rs"]
mod tests;
