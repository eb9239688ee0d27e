//! Codes of running a model (E08xx): inputs that do not fit the plan, budgets, kernel failures,
//! weights saved by another framework; and `fmt --check`'s finding.

use super::{code_info, Code, CodeInfo};

pub const RUN_INPUT_COUNT: Code = Code::new("E0800");
pub const RUN_INPUT_DTYPE: Code = Code::new("E0801");
pub const RUN_INPUT_SHAPE: Code = Code::new("E0802");
pub const RUN_NON_FINITE_INPUT: Code = Code::new("E0803");
pub const RUN_MEMORY_BUDGET: Code = Code::new("E0804");
pub const RUN_TOKEN_OUT_OF_RANGE: Code = Code::new("E0805");
pub const RUN_KERNEL: Code = Code::new("E0806");
pub const TRAIN_DIVERGED: Code = Code::new("E0807");
pub const TRAIN_CHECKPOINT: Code = Code::new("E0808");
pub const TRAIN_FAILED: Code = Code::new("E0809");
pub const RUN_ACTIVATION_LIMIT: Code = Code::new("E0810");
pub const RUN_UNFITTED_PREPROCESSING: Code = Code::new("E0811");
pub const RUN_IMAGE_UNREADABLE: Code = Code::new("E0812");
pub const RUN_IMAGE_MISFIT: Code = Code::new("E0813");
pub const WEIGHTS_KERAS_FILE: Code = Code::new("E0816");
pub const WEIGHTS_TORCH_FILE: Code = Code::new("E0817");
pub const TENSORBOARD_WRITE: Code = Code::new("E0820");

/// This phase's registry entries.
pub(super) const TABLE: &[CodeInfo] = &[
    code_info!(E0800, "wrong number of inputs"),
    code_info!(E0801, "input has the wrong dtype"),
    code_info!(E0802, "input has the wrong shape"),
    code_info!(E0803, "input holds nan or infinity"),
    code_info!(E0804, "memory budget exceeded"),
    code_info!(E0805, "token id outside the embedding table"),
    code_info!(E0806, "a kernel refused its arguments"),
    code_info!(E0807, "training diverged"),
    code_info!(E0808, "checkpoint does not fit this spec"),
    code_info!(E0809, "training cannot run this model"),
    code_info!(E0810, "activation memory over the limit"),
    code_info!(E0811, "preprocessing statistics never fitted"),
    code_info!(E0812, "image cannot be read"),
    code_info!(E0813, "images do not fit the model input"),
    code_info!(E0816, "weights file is a keras file"),
    code_info!(E0817, "weights file is a pytorch file"),
    code_info!(E0820, "tensorboard log cannot be written"),
];

// The `code_info!` macro refers to codes by their literal names.
const E0800: Code = RUN_INPUT_COUNT;
const E0801: Code = RUN_INPUT_DTYPE;
const E0802: Code = RUN_INPUT_SHAPE;
const E0803: Code = RUN_NON_FINITE_INPUT;
const E0804: Code = RUN_MEMORY_BUDGET;
const E0805: Code = RUN_TOKEN_OUT_OF_RANGE;
const E0806: Code = RUN_KERNEL;
const E0807: Code = TRAIN_DIVERGED;
const E0808: Code = TRAIN_CHECKPOINT;
const E0809: Code = TRAIN_FAILED;
const E0810: Code = RUN_ACTIVATION_LIMIT;
const E0811: Code = RUN_UNFITTED_PREPROCESSING;
const E0812: Code = RUN_IMAGE_UNREADABLE;
const E0813: Code = RUN_IMAGE_MISFIT;
const E0816: Code = WEIGHTS_KERAS_FILE;
const E0817: Code = WEIGHTS_TORCH_FILE;
const E0820: Code = TENSORBOARD_WRITE;
