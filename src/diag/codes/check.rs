//! Codes of the check phase (see the range table in `codes.rs`).

use super::CodeInfo;

/// This phase's registry entries.
pub(super) const TABLE: &[CodeInfo] = &[];
