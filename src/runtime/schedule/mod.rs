//! Learning-rate schedules: the learning rate of each optimizer step.
//!
//! Input: a [`Schedule`] (built by its validating constructors, or deserialized and then
//! [`Schedule::validate`]d) and a step number counted from 0. Output: `lr_at(step)`, a finite
//! `f32 >= 0` (in `(0, initial]`-ish ranges; cosine with `alpha = 0` reaches exactly 0).
//! Computed in f64, rounded once to f32; a pure function of the step, so restoring a checkpoint
//! needs only the step count.
//!
//! Formulas (`lr0` the initial learning rate, `s` the step):
//! - constant: `lr0`;
//! - step: `lr0 * gamma^floor(s / step_size)`, `step_size` in steps (or epochs times steps per
//!   epoch; PyTorch `StepLR`);
//! - exponential (Keras `ExponentialDecay`): `lr0 * rate^(s / decay_steps)`, the exponent
//!   floored when `staircase`;
//! - cosine (Keras `CosineDecay`): `lr0 * ((1 - alpha) * 0.5 * (1 + cos(pi * min(s, D) / D)) +
//!   alpha)` with `D = decay_steps`;
//! - linear warm-up over `W` steps wrapping any of them: for `s < W`,
//!   `start + (decay(0) - start) * s / W`; afterwards `decay(s - W)` (as Keras `CosineDecay`'s
//!   `warmup_steps`: the decay starts when the warm-up ends).
//!
//! `chain` puts schedules in sequence (`warmup |> cosine`), and `plateau` is the rule that
//! lowers the rate when a monitored value stops improving (a link of a chain, updated by the
//! training loop once an epoch rather than a function of the step).

pub mod chain;
pub mod plateau;

pub use chain::{Chain, Link};
pub use plateau::{Plateau, PlateauState};

use serde::{Deserialize, Serialize};

use crate::runtime::optim::{
    check_count, check_non_negative, check_positive, check_unit_closed, InvalidHyperparameter,
};

/// How the learning rate decays from its initial value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Decay {
    /// No decay.
    Constant,
    /// Multiply by `gamma` every `step_size` steps.
    Step {
        /// Steps between two decays (`>= 1`).
        step_size: u64,
        /// Factor applied at each decay, `(0, 1]`.
        gamma: f64,
    },
    /// Keras `ExponentialDecay`.
    Exponential {
        /// Steps over which the rate is multiplied by `decay_rate` once (`>= 1`).
        decay_steps: u64,
        /// Factor per `decay_steps`, in `(0, 1]`.
        decay_rate: f64,
        /// Decay in discrete jumps (floor of the exponent).
        staircase: bool,
    },
    /// Keras `CosineDecay`.
    Cosine {
        /// Steps from the initial rate down to `alpha * initial` (`>= 1`).
        decay_steps: u64,
        /// Final fraction of the initial rate, in `[0, 1]`.
        alpha: f64,
    },
}

/// A linear ramp before the decay starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    /// Length of the ramp in steps (`>= 1`).
    pub steps: u64,
    /// Learning rate at step 0, `>= 0`; the ramp ends at the decay's initial rate.
    pub start_lr: f64,
}

/// A learning-rate schedule: an initial rate, a decay and an optional warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    initial_lr: f64,
    decay: Decay,
    warmup: Option<Warmup>,
}

impl Schedule {
    /// A validated schedule (`initial_lr` finite and `> 0`).
    pub fn new(initial_lr: f64, decay: Decay) -> Result<Self, InvalidHyperparameter> {
        let schedule = Self {
            initial_lr,
            decay,
            warmup: None,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// The constant schedule `lr`.
    pub fn constant(lr: f64) -> Result<Self, InvalidHyperparameter> {
        Self::new(lr, Decay::Constant)
    }

    /// A step schedule whose period is given in epochs: `step_size = epochs * steps_per_epoch`.
    pub fn step_every_epochs(
        initial_lr: f64,
        epochs: u64,
        steps_per_epoch: u64,
        gamma: f64,
    ) -> Result<Self, InvalidHyperparameter> {
        check_count("step_size", epochs)?;
        check_count("steps_per_epoch", steps_per_epoch)?;
        let step_size = epochs.saturating_mul(steps_per_epoch);
        Self::new(initial_lr, Decay::Step { step_size, gamma })
    }

    /// The same schedule preceded by a linear warm-up.
    pub fn with_warmup(self, warmup: Warmup) -> Result<Self, InvalidHyperparameter> {
        let schedule = Self {
            warmup: Some(warmup),
            ..self
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// The initial learning rate.
    pub fn initial_lr(&self) -> f64 {
        self.initial_lr
    }

    /// Checks every field is in range (constructors call it; call it after deserializing).
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        check_positive("lr", self.initial_lr)?;
        // Every rate is at most `initial_lr` (or `start_lr`), so both must fit in f32.
        check_positive("lr", f64::from(self.initial_lr as f32))?;
        match self.decay {
            Decay::Constant => {}
            Decay::Step { step_size, gamma } => {
                check_count("step_size", step_size)?;
                check_positive("gamma", gamma)?;
                check_unit_closed("gamma", gamma)?;
            }
            Decay::Exponential {
                decay_steps,
                decay_rate,
                ..
            } => {
                check_count("decay_steps", decay_steps)?;
                check_positive("decay_rate", decay_rate)?;
                check_unit_closed("decay_rate", decay_rate)?;
            }
            Decay::Cosine { decay_steps, alpha } => {
                check_count("decay_steps", decay_steps)?;
                check_unit_closed("alpha", alpha)?;
            }
        }
        if let Some(warmup) = self.warmup {
            check_count("warmup_steps", warmup.steps)?;
            check_non_negative("warmup_start_lr", warmup.start_lr)?;
            check_non_negative("warmup_start_lr", f64::from(warmup.start_lr as f32))?;
        }
        Ok(())
    }

    /// The learning rate of step `step` (counted from 0).
    pub fn lr_at(&self, step: u64) -> f32 {
        let lr = match self.warmup {
            Some(warmup) if step < warmup.steps => {
                let peak = self.decayed(0);
                let fraction = step as f64 / warmup.steps as f64;
                warmup.start_lr + (peak - warmup.start_lr) * fraction
            }
            Some(warmup) => self.decayed(step - warmup.steps),
            None => self.decayed(step),
        };
        lr as f32
    }

    /// The decayed rate `s` steps after the decay starts.
    fn decayed(&self, s: u64) -> f64 {
        let lr0 = self.initial_lr;
        match self.decay {
            Decay::Constant => lr0,
            Decay::Step { step_size, gamma } => {
                let periods = s / step_size.max(1);
                lr0 * gamma.powf(periods as f64)
            }
            Decay::Exponential {
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut exponent = s as f64 / decay_steps.max(1) as f64;
                if staircase {
                    exponent = exponent.floor();
                }
                lr0 * decay_rate.powf(exponent)
            }
            Decay::Cosine { decay_steps, alpha } => {
                let total = decay_steps.max(1) as f64;
                let progress = s.min(decay_steps) as f64 / total;
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                lr0 * ((1.0 - alpha) * cosine + alpha)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact results are the point of these tests
mod tests {
    use super::*;

    fn assert_close(actual: f32, expected: f64) {
        let tolerance = 1e-7 * expected.abs().max(1e-3);
        assert!(
            (f64::from(actual) - expected).abs() <= tolerance,
            "{actual} vs {expected}"
        );
    }

    #[test]
    fn constant_is_constant() {
        let s = Schedule::constant(0.01).unwrap();
        for step in [0, 1, 1000, u64::MAX] {
            assert_eq!(s.lr_at(step), 0.01_f32);
        }
    }

    #[test]
    fn step_decay_in_steps_and_epochs() {
        let s = Schedule::new(
            0.1,
            Decay::Step {
                step_size: 30,
                gamma: 0.5,
            },
        )
        .unwrap();
        assert_close(s.lr_at(0), 0.1);
        assert_close(s.lr_at(29), 0.1);
        assert_close(s.lr_at(30), 0.05);
        assert_close(s.lr_at(59), 0.05);
        assert_close(s.lr_at(95), 0.0125);
        // 3 epochs of 10 steps: the same schedule.
        let by_epochs = Schedule::step_every_epochs(0.1, 3, 10, 0.5).unwrap();
        for step in [0, 29, 30, 59, 60, 95] {
            assert_eq!(by_epochs.lr_at(step), s.lr_at(step));
        }
    }

    #[test]
    fn exponential_decay_matches_formula() {
        let smooth = Schedule::new(
            0.1,
            Decay::Exponential {
                decay_steps: 100,
                decay_rate: 0.96,
                staircase: false,
            },
        )
        .unwrap();
        // 0.1 * 0.96^(150/100) = 0.1 * 0.96^1.5 = 0.1 * 0.940604061...
        assert_close(smooth.lr_at(150), 0.094_060_406_1);
        assert_close(smooth.lr_at(0), 0.1);
        let stairs = Schedule::new(
            0.1,
            Decay::Exponential {
                decay_steps: 100,
                decay_rate: 0.96,
                staircase: true,
            },
        )
        .unwrap();
        assert_close(stairs.lr_at(150), 0.096);
        assert_close(stairs.lr_at(199), 0.096);
        assert_close(stairs.lr_at(200), 0.0921_6);
    }

    #[test]
    fn cosine_decay_matches_formula() {
        let s = Schedule::new(
            1.0,
            Decay::Cosine {
                decay_steps: 100,
                alpha: 0.1,
            },
        )
        .unwrap();
        assert_close(s.lr_at(0), 1.0);
        // halfway: cos(pi/2) = 0 → (0.9 * 0.5 + 0.1) = 0.55
        assert_close(s.lr_at(50), 0.55);
        // quarter: 0.5 * (1 + cos(pi/4)) = 0.853553390593...; 0.9 * that + 0.1
        assert_close(s.lr_at(25), 0.868_198_051_533_946);
        assert_close(s.lr_at(100), 0.1);
        assert_close(s.lr_at(10_000), 0.1);
        let to_zero = Schedule::new(
            0.5,
            Decay::Cosine {
                decay_steps: 4,
                alpha: 0.0,
            },
        )
        .unwrap();
        assert!(to_zero.lr_at(4).abs() < 1e-12);
    }

    #[test]
    fn warmup_ramps_then_hands_over() {
        let s = Schedule::new(
            1.0,
            Decay::Cosine {
                decay_steps: 100,
                alpha: 0.0,
            },
        )
        .unwrap()
        .with_warmup(Warmup {
            steps: 10,
            start_lr: 0.0,
        })
        .unwrap();
        assert_close(s.lr_at(0), 0.0);
        assert_close(s.lr_at(5), 0.5);
        assert_close(s.lr_at(9), 0.9);
        assert_close(s.lr_at(10), 1.0);
        // 50 steps into the decay: halfway down.
        assert_close(s.lr_at(60), 0.5);
        let constant = Schedule::constant(0.2)
            .unwrap()
            .with_warmup(Warmup {
                steps: 4,
                start_lr: 0.1,
            })
            .unwrap();
        assert_close(constant.lr_at(2), 0.15);
        assert_close(constant.lr_at(4), 0.2);
    }

    #[test]
    fn out_of_range_hyperparameters_are_refused() {
        for lr in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            let err = Schedule::constant(lr).unwrap_err();
            assert_eq!(err.name, "lr");
        }
        let bad = [
            (
                Decay::Step {
                    step_size: 0,
                    gamma: 0.5,
                },
                "step_size",
            ),
            (
                Decay::Step {
                    step_size: 1,
                    gamma: 1.5,
                },
                "gamma",
            ),
            (
                Decay::Step {
                    step_size: 1,
                    gamma: 0.0,
                },
                "gamma",
            ),
            (
                Decay::Exponential {
                    decay_steps: 0,
                    decay_rate: 0.5,
                    staircase: false,
                },
                "decay_steps",
            ),
            (
                Decay::Exponential {
                    decay_steps: 1,
                    decay_rate: f64::NAN,
                    staircase: false,
                },
                "decay_rate",
            ),
            (
                Decay::Cosine {
                    decay_steps: 10,
                    alpha: -0.1,
                },
                "alpha",
            ),
        ];
        for (decay, name) in bad {
            assert_eq!(Schedule::new(0.1, decay).unwrap_err().name, name);
        }
        let warm = Schedule::constant(0.1).unwrap();
        let err = warm
            .with_warmup(Warmup {
                steps: 0,
                start_lr: 0.0,
            })
            .unwrap_err();
        assert_eq!(err.name, "warmup_steps");
        let err = warm
            .with_warmup(Warmup {
                steps: 3,
                start_lr: -1.0,
            })
            .unwrap_err();
        assert_eq!(err.name, "warmup_start_lr");
        assert_eq!(
            Schedule::step_every_epochs(0.1, 0, 10, 0.5)
                .unwrap_err()
                .name,
            "step_size"
        );
    }

    #[test]
    fn serde_round_trip_then_validate() {
        let s = Schedule::new(
            0.1,
            Decay::Cosine {
                decay_steps: 7,
                alpha: 0.2,
            },
        )
        .unwrap()
        .with_warmup(Warmup {
            steps: 3,
            start_lr: 0.01,
        })
        .unwrap();
        let text = ron::to_string(&s).unwrap();
        let back: Schedule = ron::from_str(&text).unwrap();
        assert_eq!(back, s);
        back.validate().unwrap();
        let edited = text.replace("alpha:0.2", "alpha:2.0");
        assert_ne!(edited, text);
        let tampered: Schedule = ron::from_str(&edited).unwrap();
        assert_eq!(tampered.validate().unwrap_err().name, "alpha");
    }
}
