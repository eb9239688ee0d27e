//! The serialized execution plan: everything the interpreter needs to run a model without the
//! spec, written as RON.
//!
//! Input: an optimized [`Graph`] and its pass log. Output: an [`ExecutionPlan`]. Invariants: the
//! output is deterministic (same spec, same bytes); a plan read from a file is untrusted and is
//! validated ([`validate`]) before anything uses it: format version, every index, every op's shape
//! rule (via the IR verifier), and the buffer assignment's liveness.

pub mod fuse;
mod memory;
mod validate;

pub use memory::{BufferSpec, MemoryReport};
pub use validate::{validate, PlanError};

use crate::ir::{self, Fact, Graph, Op, Param, ValueId};
use crate::passes::{self, Mode, PassOptions};
use serde::{Deserialize, Serialize};

/// The plan format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A value of the plan: its type and the buffer it lives in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanValue {
    pub name: String,
    pub fact: Fact,
    pub buffer: u32,
}

/// One step: an op over values, writing one value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<u32>,
    pub output: u32,
    /// The output overwrites the first input (which dies here).
    #[serde(default)]
    pub in_place: bool,
    /// This conv2d step and the pool step right after it run as one (`fuse-conv-pool`): the
    /// conv output is computed a tile of samples at a time in per-thread scratch memory and
    /// pooled at once, so it has no buffer of its own (see [`fuse`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fused_with_next: bool,
}

/// A compiled model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionPlan {
    pub format_version: u32,
    /// The modelc version that wrote the plan.
    pub generator: String,
    /// SHA-256 of the spec file's bytes.
    pub spec_hash: String,
    pub model: String,
    pub mode: Mode,
    pub inputs: Vec<u32>,
    pub outputs: Vec<u32>,
    pub values: Vec<PlanValue>,
    pub steps: Vec<Step>,
    /// Parameters by handle; stored ones are read from the weights file by name.
    pub params: Vec<Param>,
    pub buffers: Vec<BufferSpec>,
    pub memory: MemoryReport,
    /// What each pass did, in order.
    pub pass_log: Vec<String>,
    /// The data pipeline's `map` steps with their fitted statistics (standardize/normalize
    /// fitted on the training split), which `modelc run` applies to raw inputs. Written by
    /// `modelc train`; absent from plans compiled without data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<Vec<crate::data::spec::Step<crate::data::spec::Transform>>>,
    /// The data block's source, which says how `modelc run` reads raw CSV rows (feature and
    /// label columns, header). Written by `modelc train` and `modelc compile` for a model that a
    /// `train` block trains; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::data::spec::SourceSpec>,
    /// A multi-input pipeline's groups (`inputs image: 64, meta: 3`), one per model input in
    /// the model's order, each with its fitted `map` steps, which `modelc run` applies to that
    /// input's raw columns. Written as `preprocessing` is; empty for one input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_groups: Vec<crate::data::spec::InputGroup>,
    /// The names of a model's outputs, in `outputs`' order, when it has several
    /// (`-> (digit: ..., parity: ...)`): what `run` and `eval` call each. Empty for one output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_names: Vec<String>,
}

/// Hex SHA-256 of `bytes`: the CLI hashes the spec's canonical print (`cli::common::spec_hash`).
pub fn spec_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Runs the passes on `graph` and builds the plan.
pub fn compile(
    mut graph: Graph,
    mode: Mode,
    options: &PassOptions,
    spec_hash: String,
) -> Result<ExecutionPlan, passes::PassError> {
    let mut pass_log = passes::run(&mut graph, mode, options)?;
    let stop = options.stop_after.as_deref();
    let stopped = stop.is_some_and(|s| !passes::PLAN_STAGES.contains(&s));
    // The plan stages run in `PLAN_STAGES` order; stopping after one skips the later ones.
    let runs = |name: &str| {
        let position = |n: &str| passes::PLAN_STAGES.iter().position(|&s| s == n);
        !stopped && options.enabled(name) && stop.is_none_or(|s| position(s) >= position(name))
    };
    let stages = memory::Stages {
        fuse: runs(passes::PLAN_FUSE_CONV_POOL),
        views: runs(passes::PLAN_VIEWS),
        reuse: runs(passes::PLAN_MEMORY),
    };
    let plan = build(&graph, mode, stages, spec_hash, &mut pass_log);
    Ok(plan)
}

/// Builds a plan from a graph as it is (no graph passes).
fn build(
    graph: &Graph,
    mode: Mode,
    stages: memory::Stages,
    spec_hash: String,
    log: &mut Vec<String>,
) -> ExecutionPlan {
    let fused = if stages.fuse {
        fuse::conv_pool_pairs(graph, mode)
    } else {
        vec![false; graph.nodes.len()]
    };
    for (i, _) in fused.iter().enumerate().filter(|(_, &f)| f) {
        if let (Some(conv), Some(pool)) = (graph.nodes.get(i), graph.nodes.get(i + 1)) {
            log.push(format!(
                "{} + {} fused (the conv output is computed a tile at a time, never stored whole)",
                conv.name, pool.name
            ));
        }
    }
    let reuse = stages.reuse;
    let mem = memory::plan(graph, mode, stages, &fused);
    if mem.report.views > 0 {
        log.push(format!(
            "{} flatten/reshape step(s) made views of their input",
            mem.report.views
        ));
    }
    if reuse {
        log.push(format!(
            "memory planned: {} buffer(s), {} in-place step(s), {} bytes per sample (one buffer per value: {})",
            mem.buffers.len(),
            mem.report.in_place,
            mem.report.peak_bytes_per_sample,
            mem.report.one_buffer_per_value_bytes_per_sample
        ));
    }
    // Keep only the values the plan uses, numbered in definition order.
    let mut index = vec![None::<u32>; graph.values.len()];
    let mut values = Vec::new();
    let mut add = |v: ValueId, values: &mut Vec<PlanValue>| {
        if let (Some(slot), Some(val)) = (index.get_mut(v.index()), graph.value(v)) {
            if slot.is_none() {
                *slot = Some(values.len() as u32);
                values.push(PlanValue {
                    name: val.name.clone(),
                    fact: val.fact.clone(),
                    buffer: mem.value_buffer[v.index()],
                });
            }
        }
    };
    for &v in &graph.inputs {
        add(v, &mut values);
    }
    for n in &graph.nodes {
        add(n.output, &mut values);
    }
    let id = |v: ValueId| index.get(v.index()).copied().flatten().unwrap_or(u32::MAX);
    let steps = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| Step {
            name: n.name.clone(),
            op: n.op.clone(),
            inputs: n.inputs.iter().map(|&v| id(v)).collect(),
            output: id(n.output),
            in_place: mem.in_place[i],
            fused_with_next: fused.get(i).copied().unwrap_or(false),
        })
        .collect();
    ExecutionPlan {
        format_version: FORMAT_VERSION,
        generator: format!("modelc {}", env!("CARGO_PKG_VERSION")),
        spec_hash,
        model: graph.name.clone(),
        mode,
        inputs: graph.inputs.iter().map(|&v| id(v)).collect(),
        outputs: graph.outputs.iter().map(|&v| id(v)).collect(),
        output_names: Vec::new(),
        values,
        steps,
        params: graph.params.clone(),
        buffers: mem.buffers,
        memory: mem.report,
        pass_log: log.clone(),
        preprocessing: None,
        input_groups: Vec::new(),
        source: None,
    }
}

impl ExecutionPlan {
    /// The plan as RON text (deterministic).
    pub fn to_ron(&self) -> Result<String, ron::Error> {
        let config = ron::ser::PrettyConfig::new()
            .depth_limit(4)
            .indentor("  ".to_string());
        ron::ser::to_string_pretty(self, config)
    }

    /// Reads and validates a plan from RON text.
    pub fn from_ron(text: &str) -> Result<Self, PlanError> {
        let plan: ExecutionPlan =
            ron::from_str(text).map_err(|e| PlanError::Syntax(e.to_string()))?;
        validate(&plan)?;
        Ok(plan)
    }

    /// The plan's graph (for verification and the interpreter).
    pub fn to_graph(&self) -> Graph {
        let mut g = Graph {
            name: self.model.clone(),
            params: self.params.clone(),
            ..Graph::default()
        };
        g.values = self
            .values
            .iter()
            .map(|v| ir::Value {
                name: v.name.clone(),
                fact: v.fact.clone(),
            })
            .collect();
        g.inputs = self.inputs.iter().map(|&v| ValueId(v)).collect();
        g.outputs = self.outputs.iter().map(|&v| ValueId(v)).collect();
        g.nodes = self
            .steps
            .iter()
            .map(|s| ir::Node {
                name: s.name.clone(),
                op: s.op.clone(),
                inputs: s.inputs.iter().map(|&v| ValueId(v)).collect(),
                output: ValueId(s.output),
            })
            .collect();
        g
    }

    /// Peak activation bytes for a batch, without per-thread scratch.
    pub fn peak_bytes(&self, batch: u64) -> u64 {
        self.memory.peak_bytes_per_sample.saturating_mul(batch)
    }

    /// For each value, whether it is a fused conv output, which has no buffer (see [`fuse`]).
    /// One pass over the steps: callers that ask about many values ask this once.
    pub fn unstored_values(&self) -> Vec<bool> {
        let mut unstored = vec![false; self.values.len()];
        for s in self.steps.iter().filter(|s| s.fused_with_next) {
            if let Some(u) = unstored.get_mut(s.output as usize) {
                *u = true;
            }
        }
        unstored
    }
}

#[cfg(test)]
mod tests;
