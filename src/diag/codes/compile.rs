//! Codes of lowering a checked model to a plan (E10xx).

use super::{code_info, Code, CodeInfo};

pub const LOWER_UNSUPPORTED: Code = Code::new("E1000");

/// This phase's registry entries.
pub(super) const TABLE: &[CodeInfo] =
    &[code_info!(E1000, "construct not supported by the compiler")];

const E1000: Code = LOWER_UNSUPPORTED;
