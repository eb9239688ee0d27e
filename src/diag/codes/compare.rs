//! Codes of comparing runs (E11xx): run folders whose files cannot be compared, a select metric
//! no run recorded, two runs with one name.

use super::{code_info, Code, CodeInfo};

pub const COMPARE_NO_METRICS: Code = Code::new("E1101");
pub const COMPARE_BAD_METRICS: Code = Code::new("E1102");
pub const COMPARE_BAD_TRIAL_INFO: Code = Code::new("E1103");
pub const COMPARE_UNKNOWN_METRIC: Code = Code::new("E1104");
pub const COMPARE_DUPLICATE_TRIAL: Code = Code::new("E1105");

/// This phase's registry entries.
pub(super) const TABLE: &[CodeInfo] = &[
    code_info!(E1101, "run folder without a metrics.csv"),
    code_info!(E1102, "metrics.csv is not a run's history"),
    code_info!(E1103, "trial.json is not a trial record"),
    code_info!(E1104, "select metric not recorded by a run"),
    code_info!(E1105, "two runs with the same trial name"),
];

const E1101: Code = COMPARE_NO_METRICS;
const E1102: Code = COMPARE_BAD_METRICS;
const E1103: Code = COMPARE_BAD_TRIAL_INFO;
const E1104: Code = COMPARE_UNKNOWN_METRIC;
const E1105: Code = COMPARE_DUPLICATE_TRIAL;
