//! Codes of the data phase: `data` blocks and the data files they read (E06xx).
//!
//! E0600–E0609 and E0623 are found in the spec without opening a file (lowering and static
//! typing); E0610–E0622 are found in data files and carry an external location (file, row,
//! column).

use super::{code_info, Code, CodeInfo};

pub const DATA_UNKNOWN_SETTING: Code = Code::new("E0600");
pub const DATA_UNKNOWN_SOURCE: Code = Code::new("E0601");
pub const DATA_UNKNOWN_STEP: Code = Code::new("E0602");
pub const DATA_UNKNOWN_ARGUMENT: Code = Code::new("E0603");
pub const DATA_MISSING_ARGUMENT: Code = Code::new("E0604");
pub const DATA_ARGUMENT_TYPE: Code = Code::new("E0605");
pub const DATA_ARGUMENT_RANGE: Code = Code::new("E0606");
pub const DATA_DUPLICATE: Code = Code::new("E0607");
pub const DATA_STEP_MISMATCH: Code = Code::new("E0608");
pub const DATA_SHAPE_UNKNOWN: Code = Code::new("E0609");
pub const DATA_CSV_RAGGED: Code = Code::new("E0610");
pub const DATA_COLUMN_NOT_FOUND: Code = Code::new("E0611");
pub const DATA_NOT_A_NUMBER: Code = Code::new("E0612");
pub const DATA_NON_FINITE: Code = Code::new("E0613");
pub const DATA_EMPTY: Code = Code::new("E0614");
pub const DATA_IDX_MALFORMED: Code = Code::new("E0615");
pub const DATA_COUNT_MISMATCH: Code = Code::new("E0616");
pub const DATA_LABEL_RANGE: Code = Code::new("E0617");
pub const DATA_NPY_MALFORMED: Code = Code::new("E0618");
pub const DATA_SHAPE_MISMATCH: Code = Code::new("E0619");
pub const DATA_TOO_SMALL: Code = Code::new("E0620");
pub const DATA_TOO_LARGE: Code = Code::new("E0621");
pub const DATA_GZIP_CORRUPT: Code = Code::new("E0622");
pub const DATA_STRATIFY: Code = Code::new("E0623");

/// This phase's registry entries.
pub(super) const TABLE: &[CodeInfo] = &[
    code_info!(E0600, "unknown data setting"),
    code_info!(E0601, "unknown data source"),
    code_info!(E0602, "unknown pipeline step"),
    code_info!(E0603, "unknown argument in a data block"),
    code_info!(E0604, "missing argument in a data block"),
    code_info!(E0605, "argument of the wrong type in a data block"),
    code_info!(E0606, "argument out of range in a data block"),
    code_info!(E0607, "setting or argument given twice"),
    code_info!(E0608, "pipeline step does not fit its input"),
    code_info!(E0609, "element shape not known statically"),
    code_info!(E0610, "csv row has the wrong number of cells"),
    code_info!(E0611, "column not found"),
    code_info!(E0612, "cell is not a number"),
    code_info!(E0613, "nan or infinite value in data"),
    code_info!(E0614, "data file has no samples"),
    code_info!(E0615, "malformed idx file"),
    code_info!(E0616, "feature and label counts differ"),
    code_info!(E0617, "label outside the class range"),
    code_info!(E0618, "malformed or unsupported npy file"),
    code_info!(E0619, "data shape differs from the declared shape"),
    code_info!(E0620, "data set too small for the pipeline"),
    code_info!(E0621, "data set exceeds the memory budget"),
    code_info!(E0622, "corrupt gzip stream in a data file"),
    code_info!(E0623, "split cannot stratify this pipeline"),
];

// The `code_info!` macro refers to codes by their literal names.
const E0600: Code = DATA_UNKNOWN_SETTING;
const E0601: Code = DATA_UNKNOWN_SOURCE;
const E0602: Code = DATA_UNKNOWN_STEP;
const E0603: Code = DATA_UNKNOWN_ARGUMENT;
const E0604: Code = DATA_MISSING_ARGUMENT;
const E0605: Code = DATA_ARGUMENT_TYPE;
const E0606: Code = DATA_ARGUMENT_RANGE;
const E0607: Code = DATA_DUPLICATE;
const E0608: Code = DATA_STEP_MISMATCH;
const E0609: Code = DATA_SHAPE_UNKNOWN;
const E0610: Code = DATA_CSV_RAGGED;
const E0611: Code = DATA_COLUMN_NOT_FOUND;
const E0612: Code = DATA_NOT_A_NUMBER;
const E0613: Code = DATA_NON_FINITE;
const E0614: Code = DATA_EMPTY;
const E0615: Code = DATA_IDX_MALFORMED;
const E0616: Code = DATA_COUNT_MISMATCH;
const E0617: Code = DATA_LABEL_RANGE;
const E0618: Code = DATA_NPY_MALFORMED;
const E0619: Code = DATA_SHAPE_MISMATCH;
const E0620: Code = DATA_TOO_SMALL;
const E0621: Code = DATA_TOO_LARGE;
const E0622: Code = DATA_GZIP_CORRUPT;
const E0623: Code = DATA_STRATIFY;
