//! Codes of usage, files and I/O (E09xx): problems outside the user's spec, exit status 2.

use super::{code_info, Code, CodeInfo};

pub const IO_READ: Code = Code::new("E0900");
pub const IO_WRITE: Code = Code::new("E0901");
pub const IO_USAGE: Code = Code::new("E0902");
pub const IO_SAME_PATH: Code = Code::new("E0903");
pub const IO_OUT_OF_MEMORY: Code = Code::new("E0904");
pub const IO_PLAN_PREPROCESSING_TOO_LARGE: Code = Code::new("E0905");

/// This phase's registry entries.
pub(super) const TABLE: &[CodeInfo] = &[
    code_info!(E0900, "cannot read a file", io),
    code_info!(E0901, "cannot write a file", io),
    code_info!(E0902, "invalid command-line usage", io),
    code_info!(E0903, "output path is an input path", io),
    code_info!(E0904, "out of memory", io),
    code_info!(
        E0905,
        "plan preprocessing makes samples larger than the data budget",
        io
    ),
];

const E0900: Code = IO_READ;
const E0901: Code = IO_WRITE;
const E0902: Code = IO_USAGE;
const E0903: Code = IO_SAME_PATH;
const E0904: Code = IO_OUT_OF_MEMORY;
const E0905: Code = IO_PLAN_PREPROCESSING_TOO_LARGE;
