//! Codes of lowering a checked model to a plan, or a plan to another format (E10xx), and of
//! exporting a spec as a PyTorch package (E12xx).

use super::{code_info, Code, CodeInfo};

pub const LOWER_UNSUPPORTED: Code = Code::new("E1000");
pub const EXPORT_UNSUPPORTED: Code = Code::new("E1001");
pub const TORCH_UNSUPPORTED: Code = Code::new("E1201");

/// This phase's registry entries.
pub(super) const TABLE: &[CodeInfo] = &[
    code_info!(E1000, "construct not supported by the compiler"),
    code_info!(E1001, "layer with no form in the export format"),
    code_info!(
        E1201,
        "layer, data step or setting with no form in the torch export"
    ),
];

const E1000: Code = LOWER_UNSUPPORTED;
const E1001: Code = EXPORT_UNSUPPORTED;
const E1201: Code = TORCH_UNSUPPORTED;
