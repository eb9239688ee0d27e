//! Errors of running a plan, and their diagnostics (E08xx; plan load errors are E07xx).

use thiserror::Error;

use crate::diag::codes::{
    IO_OUT_OF_MEMORY, IO_PLAN_PREPROCESSING_TOO_LARGE, PLAN_INCONSISTENT, PLAN_SYNTAX,
    PLAN_VERSION, RUN_INPUT_COUNT, RUN_INPUT_DTYPE, RUN_INPUT_SHAPE, RUN_KERNEL, RUN_MEMORY_BUDGET,
    RUN_NON_FINITE_INPUT, RUN_TOKEN_OUT_OF_RANGE,
};
use crate::diag::Diagnostic;
use crate::ir::DType;
use crate::plan::PlanError;
use crate::runtime::kernels::KernelError;

/// Why a run (or building an interpreter) failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RunError {
    #[error("the model takes {expected} input(s), {found} given")]
    InputCount { expected: usize, found: usize },
    #[error("input `{input}` has dtype {found}, the model declares {expected}")]
    InputDType {
        input: String,
        expected: DType,
        found: DType,
    },
    #[error("input `{input}` has shape {found:?}, the model declares {expected}{detail}")]
    InputShape {
        input: String,
        expected: String,
        found: Vec<usize>,
        /// Extra words, e.g. which symbol disagreed (starts with "; " when present).
        detail: String,
    },
    #[error(
        "input `{input}` holds {count} NaN or infinite value(s), the first at flat index {first}"
    )]
    NonFiniteInput {
        input: String,
        count: usize,
        first: usize,
    },
    #[error("running {batch} sample(s) needs {} of activation memory, the budget is {}", human(*.needed), human(*.budget))]
    MemoryBudget {
        batch: usize,
        needed: u64,
        budget: u64,
    },
    /// The system refused activation memory the budget allowed.
    #[error("out of memory: could not allocate {bytes} bytes ({}) for the activation buffers", human(*.bytes))]
    OutOfMemory { bytes: u64 },
    #[error("token id {id} at flat position {position} is outside the embedding table of `{step}` (0..{vocab})")]
    TokenOutOfRange {
        step: String,
        id: i64,
        position: usize,
        vocab: usize,
    },
    #[error("step `{step}` failed: {error}")]
    Kernel { step: String, error: KernelError },
    /// The plan or weights do not support running (an internal inconsistency).
    #[error("the plan cannot run: {0}")]
    Plan(String),
}

/// Bytes in binary units (`61.2 GiB`).
fn human(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

impl RunError {
    /// Wraps a kernel error of `step`, turning an embedding id error into a user-facing one.
    pub(crate) fn kernel(step: &str, error: KernelError) -> Self {
        match error {
            KernelError::IdOutOfRange {
                id,
                position,
                vocab,
            } => RunError::TokenOutOfRange {
                step: step.to_string(),
                id,
                position,
                vocab,
            },
            error => RunError::Kernel {
                step: step.to_string(),
                error,
            },
        }
    }

    /// The diagnostic for this error.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let code = match self {
            RunError::InputCount { .. } => RUN_INPUT_COUNT,
            RunError::InputDType { .. } => RUN_INPUT_DTYPE,
            RunError::InputShape { .. } => RUN_INPUT_SHAPE,
            RunError::NonFiniteInput { .. } => RUN_NON_FINITE_INPUT,
            RunError::MemoryBudget { .. } => RUN_MEMORY_BUDGET,
            RunError::OutOfMemory { .. } => IO_OUT_OF_MEMORY,
            RunError::TokenOutOfRange { .. } => RUN_TOKEN_OUT_OF_RANGE,
            RunError::Kernel { .. } | RunError::Plan(_) => RUN_KERNEL,
        };
        let d = Diagnostic::error(code, self.to_string());
        match self {
            RunError::MemoryBudget { .. } => d.help("use a smaller batch size"),
            RunError::OutOfMemory { .. } => d.help(
                "use a smaller batch, or set `--max-activation-bytes` below the memory this machine has",
            ),
            RunError::InputDType { .. } => d.help("convert the array to the declared dtype"),
            RunError::Kernel { .. } | RunError::Plan(_) => {
                d.note("this is a bug in modelc; please report it with the plan file")
            }
            _ => d,
        }
    }
}

/// The diagnostic for a plan that failed to load from `path`.
pub fn plan_error_diagnostic(error: &PlanError, path: &str) -> Diagnostic {
    let code = match error {
        PlanError::Syntax(_) => PLAN_SYNTAX,
        PlanError::Version { .. } => PLAN_VERSION,
        PlanError::Inconsistent(_) => PLAN_INCONSISTENT,
        PlanError::Preprocessing(_) => IO_PLAN_PREPROCESSING_TOO_LARGE,
    };
    let d = Diagnostic::error(code, error.to_string()).at_external(path, 0, 0);
    match error {
        PlanError::Syntax(_) | PlanError::Inconsistent(_) => {
            d.help("compile the spec again to get a fresh plan")
        }
        PlanError::Version { .. } => d.help("recompile the spec with this modelc"),
        PlanError::Preprocessing(_) => d
            .note("`run` applies a plan's preprocessing to its raw input; this step could never fit in memory")
            .help("train or compile the spec again to get a fresh plan"),
    }
}
