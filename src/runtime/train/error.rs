//! The one error type of the training engine.
//!
//! Every variant names what went wrong and where: the plan step (layer) and op for kernel
//! failures, the training step (1-based) and the layer for non-finite losses and gradients, the
//! parameter for initialization problems. Nothing here is a panic: a plan or a batch that does
//! not fit is reported, and the trainer re-sizes its buffers on the next call.

use thiserror::Error;

use crate::runtime::clip::ClipError;
use crate::runtime::init::InitError;
use crate::runtime::kernels::KernelError;
use crate::runtime::loss::LossError;
use crate::runtime::optim::OptimError;

/// Why the trainer could not run a step.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TrainError {
    /// The plan was not compiled with `Mode::Train` (it may lack batch norm or dropout).
    #[error(
        "the plan was compiled for inference; training needs a plan compiled with Mode::Train"
    )]
    NotATrainingPlan,
    /// A single loss was given for a plan with several outputs (or none), or one loss per
    /// output for another number of outputs.
    #[error("the losses given do not match the plan's {0} output(s)")]
    OutputCount(usize),
    /// The plan is internally inconsistent (an index out of range, a missing buffer).
    #[error("internal error: {0}")]
    Internal(String),
    /// The caller passed the wrong number of inputs.
    #[error("the model has {expected} input(s), {found} were given")]
    InputCount { expected: usize, found: usize },
    /// An input's dtype or shape does not fit the plan.
    #[error("input `{name}`: {detail}")]
    Input { name: String, detail: String },
    /// A value's shape needs a symbolic dimension that no input binds, or its size overflows.
    #[error("value `{name}`: {detail}")]
    ValueShape { name: String, detail: String },
    /// A kernel refused its arguments.
    #[error("layer `{layer}` ({op}): {source}")]
    Kernel {
        layer: String,
        op: &'static str,
        #[source]
        source: KernelError,
    },
    /// The op (or this form of it) has no training implementation.
    #[error("layer `{layer}` ({op}): {detail}")]
    Unsupported {
        layer: String,
        op: &'static str,
        detail: String,
    },
    /// A parameter could not be initialized or does not fit its declared shape.
    #[error("parameter `{name}`: {detail}")]
    Param { name: String, detail: String },
    /// Initialization failed.
    #[error("parameter `{name}`: {source}")]
    Init {
        name: String,
        #[source]
        source: InitError,
    },
    /// The loss could not be computed (labels out of range, shapes).
    #[error("loss: {0}")]
    Loss(#[from] LossError),
    /// The optimizer refused the step.
    #[error("optimizer: {0}")]
    Optim(#[from] OptimError),
    /// Clipping refused its threshold.
    #[error("clipping: {0}")]
    Clip(#[from] ClipError),
    /// The loss of a training step is NaN or infinite; parameters are untouched.
    #[error("training step {step}: the loss is not finite ({loss}); {}; the parameters were left as they were before this step", origin_text(.origin.as_ref()))]
    NonFiniteLoss {
        step: u64,
        loss: f32,
        origin: Option<NonFiniteOrigin>,
    },
    /// A gradient holds a NaN or infinity; parameters are untouched.
    #[error("training step {step}: the gradient of `{param}` (layer `{layer}`) is not finite at element {element}; the parameters were left as they were before this step")]
    NonFiniteGradient {
        step: u64,
        layer: String,
        param: String,
        element: usize,
    },
    /// The optimizer update itself overflowed (finite gradients, huge learning rate); the
    /// update has been applied.
    #[error("training step {step}: parameter `{param}` (layer `{layer}`) became non-finite in the optimizer update")]
    NonFiniteParam {
        step: u64,
        layer: String,
        param: String,
    },
}

/// Where a non-finite loss came from in the forward pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NonFiniteOrigin {
    /// The batch itself holds a NaN or infinity in this input.
    Input(String),
    /// The first step whose output holds a NaN or infinity.
    Step(String),
}

fn origin_text(origin: Option<&NonFiniteOrigin>) -> String {
    match origin {
        Some(NonFiniteOrigin::Input(name)) => {
            format!("the input `{name}` of this batch holds a NaN or infinity")
        }
        Some(NonFiniteOrigin::Step(name)) => {
            format!("the first non-finite value of the forward pass is in the output of `{name}`")
        }
        None => "every value of the forward pass was finite, so the loss itself overflowed (a log of 0, or a huge error)".into(),
    }
}

/// The layer part of a `LAYER.PARAM` parameter name.
pub(crate) fn layer_of(param: &str) -> String {
    param
        .rsplit_once('.')
        .map_or(param, |(layer, _)| layer)
        .to_string()
}

/// Builds a [`TrainError::Internal`].
pub(crate) fn internal(detail: impl Into<String>) -> TrainError {
    TrainError::Internal(detail.into())
}
