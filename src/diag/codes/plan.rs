//! Codes of plans, weights and checkpoints (E07xx): files modelc reads back and must distrust.

use super::{code_info, Code, CodeInfo};

pub const PLAN_SYNTAX: Code = Code::new("E0700");
pub const PLAN_VERSION: Code = Code::new("E0701");
pub const PLAN_INCONSISTENT: Code = Code::new("E0702");
pub const WEIGHTS_FORMAT: Code = Code::new("E0710");
pub const WEIGHTS_MISSING: Code = Code::new("E0711");
pub const WEIGHTS_UNEXPECTED: Code = Code::new("E0712");
pub const WEIGHTS_DTYPE: Code = Code::new("E0713");
pub const WEIGHTS_SHAPE: Code = Code::new("E0714");
pub const WEIGHTS_NON_FINITE: Code = Code::new("E0715");
pub const WEIGHTS_PLAN_MISMATCH: Code = Code::new("E0716");
pub const WEIGHTS_TOO_LARGE: Code = Code::new("E0717");

/// This phase's registry entries.
pub(super) const TABLE: &[CodeInfo] = &[
    code_info!(E0700, "plan file is not a valid plan"),
    code_info!(E0701, "plan format version not supported"),
    code_info!(E0702, "plan does not hold together"),
    code_info!(E0710, "weights file is not valid safetensors"),
    code_info!(E0711, "weights file lacks a tensor"),
    code_info!(E0712, "weights file has a tensor the model does not"),
    code_info!(E0713, "weight tensor has the wrong dtype"),
    code_info!(E0714, "weight tensor has the wrong shape"),
    code_info!(E0715, "weight tensor holds nan or infinity"),
    code_info!(E0716, "weights do not fit the plan"),
    code_info!(E0717, "plan's parameters too large for fresh weights"),
];

// The `code_info!` macro refers to codes by their literal names.
const E0700: Code = PLAN_SYNTAX;
const E0701: Code = PLAN_VERSION;
const E0702: Code = PLAN_INCONSISTENT;
const E0710: Code = WEIGHTS_FORMAT;
const E0711: Code = WEIGHTS_MISSING;
const E0712: Code = WEIGHTS_UNEXPECTED;
const E0713: Code = WEIGHTS_DTYPE;
const E0714: Code = WEIGHTS_SHAPE;
const E0715: Code = WEIGHTS_NON_FINITE;
const E0716: Code = WEIGHTS_PLAN_MISMATCH;
const E0717: Code = WEIGHTS_TOO_LARGE;
