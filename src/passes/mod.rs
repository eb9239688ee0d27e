//! Optimization passes over the IR, in an explicit ordered pipeline.
//!
//! Input: a verified [`Graph`]. Output: the rewritten graph and a log of what each pass did, in
//! words a user reads in `modelc inspect` ("batch_norm_1 folded into conv2d_1"). Invariants:
//! passes never emit user diagnostics (a broken invariant is an [`PassError`] naming the pass);
//! inference-only rewrites never run on the training plan; the graph is verified after every pass.

mod eliminate_dead_nodes;
mod eliminate_identities;
mod fold_batch_norm;
mod fold_embedding_projection;
mod fold_input_normalization;
mod fuse_activation;
mod remove_dropout;
mod rewrite;

pub use fold_embedding_projection::MAX_PROJECTION_BYTES;

use crate::ir::{self, Graph};
use rewrite::Rewrite;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which plan is being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Inference: every rewrite may run.
    Infer,
    /// Training: only rewrites that keep the trained parameters and what backward needs.
    Train,
}

/// A graph rewrite.
pub trait Pass {
    /// The kebab-case name used by `--disable-pass` and `--stop-after`.
    fn name(&self) -> &'static str;
    /// Whether the pass is valid for this mode.
    fn applies_to(&self, mode: Mode) -> bool;
    /// Rewrites the graph; appends what it did to `log`; returns whether anything changed.
    fn run(&self, graph: &mut Graph, log: &mut Vec<String>) -> bool;
}

/// A pass broke an IR invariant: a bug in modelc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassError {
    pub pass: &'static str,
    pub error: ir::VerifyError,
}

impl fmt::Display for PassError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "internal error: pass `{}` produced an invalid graph: {}",
            self.pass, self.error
        )
    }
}

impl std::error::Error for PassError {}

/// The graph passes, in the order they run. `fuse-conv-pool`, `views` and `plan-memory` run when
/// the plan is built (see `plan`), after these.
pub fn pipeline() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(remove_dropout::RemoveDropout),
        Box::new(eliminate_identities::EliminateIdentities),
        Box::new(fold_batch_norm::FoldBatchNorm),
        Box::new(fold_input_normalization::FoldInputNormalization),
        Box::new(fuse_activation::FuseActivation),
        Box::new(fold_embedding_projection::FoldEmbeddingProjection),
        Box::new(eliminate_dead_nodes::EliminateDeadNodes),
    ]
}

/// Names of every pass, graph passes first, then the plan-stage ones.
pub fn all_pass_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = pipeline().iter().map(|p| p.name()).collect();
    names.extend(PLAN_STAGES);
    names
}

/// The plan-stage passes, in the order they run when the plan is built.
pub const PLAN_STAGES: [&str; 3] = [PLAN_FUSE_CONV_POOL, PLAN_VIEWS, PLAN_MEMORY];
/// The plan-stage pass that runs a conv2d and the pool after it as one step (inference only).
pub const PLAN_FUSE_CONV_POOL: &str = "fuse-conv-pool";

/// The plan-stage pass that makes flatten and reshape views of their input.
pub const PLAN_VIEWS: &str = "views";
/// The plan-stage pass that assigns buffers by liveness.
pub const PLAN_MEMORY: &str = "plan-memory";

/// Which passes run.
#[derive(Clone, Debug, Default)]
pub struct PassOptions {
    /// `-O0`: no pass runs.
    pub no_optimize: bool,
    /// Passes switched off by name.
    pub disabled: Vec<String>,
    /// Stop after this pass (for debugging).
    pub stop_after: Option<String>,
}

impl PassOptions {
    /// Whether the named pass is switched on.
    pub fn enabled(&self, name: &str) -> bool {
        !self.no_optimize && !self.disabled.iter().any(|d| d == name)
    }
}

/// Most rounds of the rewrite pipeline before it is taken as settled.
const MAX_ROUNDS: usize = 8;

/// Runs the pipeline to a fixpoint (capped), verifying after every pass. Returns the log.
pub fn run(graph: &mut Graph, mode: Mode, options: &PassOptions) -> Result<Vec<String>, PassError> {
    let mut log = Vec::new();
    if options.no_optimize {
        return Ok(log);
    }
    for _ in 0..MAX_ROUNDS {
        let mut changed = false;
        for pass in pipeline() {
            if !pass.applies_to(mode) || !options.enabled(pass.name()) {
                continue;
            }
            changed |= pass.run(graph, &mut log);
            ir::verify(graph).map_err(|error| PassError {
                pass: pass.name(),
                error,
            })?;
            if options.stop_after.as_deref() == Some(pass.name()) {
                return Ok(log);
            }
        }
        if !changed {
            break;
        }
    }
    Ok(log)
}

#[cfg(test)]
pub(crate) mod testing;
