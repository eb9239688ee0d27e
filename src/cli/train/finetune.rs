//! Fine-tuning's start: `train --init-weights W` (or the block's `init "W"`, relative to the
//! spec's folder) initializes the training plan's parameters by name from `W`, and the run says
//! what matched. A resumed run starts from its checkpoint instead.

use super::super::output::Output;
use crate::check::CheckedTrain;
use crate::diag::Diagnostic;
use crate::fit::init_weights::{init_from_file, InitReport};
use crate::plan::ExecutionPlan;
use crate::runtime::train::ParamStore;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The weights file to start from: the flag's, else the block's (relative to the spec).
pub fn init_path(flag: Option<&Path>, spec: &Path, train: &CheckedTrain) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    let written = train.init.as_deref()?;
    let folder = spec.parent().unwrap_or_else(|| Path::new(""));
    Some(folder.join(written))
}

/// `params` initialized from `path` by name, reporting what matched on `out`.
pub fn start_from(
    out: &Output,
    path: &Path,
    max_bytes: u64,
    plan: &ExecutionPlan,
    params: ParamStore,
) -> Result<ParamStore, Vec<Diagnostic>> {
    let (params, report) = init_from_file(path, max_bytes, plan, params)?;
    out.status("Initialized", &report_line(path, &report));
    Ok(params)
}

/// `4 of 6 parameters from W (by name); kept their initializers: a, b; not in this model: c`.
fn report_line(path: &Path, r: &InitReport) -> String {
    let total = r.loaded.len() + r.kept.len();
    let mut line = format!(
        "{} of {total} parameters from {} (by name)",
        r.loaded.len(),
        path.display()
    );
    let mut list = |what: &str, names: &[String]| {
        if names.is_empty() {
            return;
        }
        let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
        let more = names.len().saturating_sub(shown.len());
        let _ = write!(line, "; {what}: {}", shown.join(", "));
        if more > 0 {
            let _ = write!(line, " and {more} more");
        }
    };
    list("kept their initializers", &r.kept);
    list("not in this model", &r.unused);
    line
}
