//! Errors of the training math: a hyperparameter out of range (raised by constructors and by
//! `validate` after a checkpoint is loaded) and a step whose inputs do not fit the optimizer.
//!
//! Every error names what is wrong (the hyperparameter, the parameter index, the shapes) so the
//! interpreter can turn it into a diagnostic without guessing.

use thiserror::Error;

/// A hyperparameter outside its documented range.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("hyperparameter `{name}` is {value}, expected {expected}")]
pub struct InvalidHyperparameter {
    /// The hyperparameter's name as the user writes it (`lr`, `momentum`, `beta1`, ...).
    pub name: &'static str,
    /// The value found.
    pub value: f64,
    /// The allowed range, in words (`a finite number > 0`, `in [0, 1)`).
    pub expected: &'static str,
}

impl InvalidHyperparameter {
    fn new(name: &'static str, value: f64, expected: &'static str) -> Self {
        Self {
            name,
            value,
            expected,
        }
    }
}

/// Checks `value` is finite and `> 0`.
pub fn check_positive(name: &'static str, value: f64) -> Result<(), InvalidHyperparameter> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(InvalidHyperparameter::new(
            name,
            value,
            "a finite number > 0",
        ))
    }
}

/// Checks `value` is finite and `>= 0`.
pub fn check_non_negative(name: &'static str, value: f64) -> Result<(), InvalidHyperparameter> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(InvalidHyperparameter::new(
            name,
            value,
            "a finite number >= 0",
        ))
    }
}

/// Checks `value` is in `[0, 1)`.
pub fn check_unit_half_open(name: &'static str, value: f64) -> Result<(), InvalidHyperparameter> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(InvalidHyperparameter::new(name, value, "in [0, 1)"))
    }
}

/// Checks `value` is in `[0, 1]`.
pub fn check_unit_closed(name: &'static str, value: f64) -> Result<(), InvalidHyperparameter> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(InvalidHyperparameter::new(name, value, "in [0, 1]"))
    }
}

/// Checks `value` is in the open interval `(0, 1)`.
pub fn check_unit_open(name: &'static str, value: f64) -> Result<(), InvalidHyperparameter> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(InvalidHyperparameter::new(name, value, "in (0, 1)"))
    }
}

/// Checks a count (steps, epochs) is at least 1.
pub fn check_count(name: &'static str, value: u64) -> Result<(), InvalidHyperparameter> {
    if value >= 1 {
        Ok(())
    } else {
        Err(InvalidHyperparameter::new(
            name,
            value as f64,
            "an integer >= 1",
        ))
    }
}

/// Builds the error for a combination that is invalid as a whole (e.g. nesterov without momentum).
pub fn invalid(name: &'static str, value: f64, expected: &'static str) -> InvalidHyperparameter {
    InvalidHyperparameter::new(name, value, expected)
}

/// Why an optimizer step was refused. The parameters are left untouched when this is returned.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OptimError {
    /// A hyperparameter (or the step's learning rate) is out of range.
    #[error(transparent)]
    Hyperparameter(#[from] InvalidHyperparameter),
    /// `params` and `grads` have different lengths.
    #[error("{params} parameters but {grads} gradients")]
    CountMismatch {
        /// Number of parameter tensors.
        params: usize,
        /// Number of gradient tensors.
        grads: usize,
    },
    /// A gradient's shape differs from its parameter's.
    #[error("parameter {index} has shape {param:?} but its gradient has shape {grad:?}")]
    GradShape {
        /// Index of the parameter.
        index: usize,
        /// The parameter's shape.
        param: Vec<usize>,
        /// The gradient's shape.
        grad: Vec<usize>,
    },
    /// The optimizer holds state for a parameter of another shape (or another parameter count),
    /// e.g. a checkpoint restored into a different model.
    #[error("optimizer state `{slot}` for parameter {index} has shape {state:?}, the parameter has shape {param:?}")]
    StateShape {
        /// Name of the state slot (`velocity`, `m`, `v`, ...).
        slot: &'static str,
        /// Index of the parameter.
        index: usize,
        /// Shape held in the state.
        state: Vec<usize>,
        /// The parameter's shape.
        param: Vec<usize>,
    },
    /// The optimizer state was made for a different number of parameters.
    #[error("optimizer state holds {state} parameters, the step has {params}")]
    StateCount {
        /// Parameters in the state.
        state: usize,
        /// Parameters given to the step.
        params: usize,
    },
}
