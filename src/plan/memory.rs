//! `plan-memory` and `views`: liveness-based buffer assignment.
//!
//! Every value gets a buffer. A view (flatten, reshape) shares its input's buffer when `views`
//! is on. An elementwise step whose input dies at that step writes in place. Otherwise a value
//! takes the smallest free buffer that fits, else grows the largest free one, else a new one;
//! a buffer is freed when the last value living in it has had its last use. Training plans keep
//! every value (backward reads them), so only views share there. Sizes are per sample: a buffer
//! holds `bytes_per_sample * batch` bytes at run time.
//!
//! A fused conv output (`fuse-conv-pool`, see [`super::fuse`]) gets no buffer: it exists only
//! as a per-thread tile, counted in [`MemoryReport::scratch_bytes_per_thread`]. The conv's
//! inputs are read until the pool step that ends the fused pair, so they stay alive until then.
//! The one-buffer-per-value baseline still counts every value of the model, fused ones too.

use crate::ir::Graph;
use crate::passes::Mode;
use serde::{Deserialize, Serialize};

/// One buffer of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferSpec {
    /// Bytes per sample; the runtime multiplies by the batch size.
    pub bytes_per_sample: u64,
}

/// What the memory plan decided, and what it saves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Sum of all buffers: the activation memory this plan needs per sample.
    pub peak_bytes_per_sample: u64,
    /// What one buffer per value would need per sample.
    pub one_buffer_per_value_bytes_per_sample: u64,
    /// Values that share their input's buffer as views.
    pub views: usize,
    /// Steps that write their output over their input.
    pub in_place: usize,
    /// Scratch memory each thread holds for fused conv steps (one tile per fused step); it
    /// does not grow with the batch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub scratch_bytes_per_thread: u64,
}

// serde's `skip_serializing_if` passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl MemoryReport {
    /// Activation bytes for a batch run by `threads` threads: the buffers plus every thread's
    /// scratch (saturating).
    pub fn total_bytes(&self, batch: u64, threads: u64) -> u64 {
        self.peak_bytes_per_sample
            .saturating_mul(batch)
            .saturating_add(self.scratch_bytes_per_thread.saturating_mul(threads))
    }
}

/// Which plan-stage passes run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stages {
    /// `fuse-conv-pool`.
    pub fuse: bool,
    /// `views`.
    pub views: bool,
    /// `plan-memory`.
    pub reuse: bool,
}

/// The assignment: a buffer per value, whether each step runs in place, and the buffers.
pub struct MemoryPlan {
    pub value_buffer: Vec<u32>,
    pub in_place: Vec<bool>,
    pub buffers: Vec<BufferSpec>,
    pub report: MemoryReport,
}

fn bytes(graph: &Graph, v: crate::ir::ValueId) -> u64 {
    graph
        .value(v)
        .and_then(|x| x.fact.bytes_per_sample())
        .unwrap_or(0) as u64
}

/// The values step `i` reads, in order. A fused conv's inputs are read by the pool step that
/// ends the pair (`fused[i - 1]`), not by the conv step itself.
fn reads<'g>(
    graph: &'g Graph,
    fused: &'g [bool],
    i: usize,
) -> impl Iterator<Item = crate::ir::ValueId> + 'g {
    let is_fused = |k: usize| fused.get(k).copied().unwrap_or(false);
    let own = graph
        .nodes
        .get(i)
        .filter(|_| !is_fused(i))
        .map(|n| n.inputs.as_slice())
        .unwrap_or_default();
    let carried = i
        .checked_sub(1)
        .filter(|&p| is_fused(p))
        .and_then(|p| graph.nodes.get(p))
        .map(|n| n.inputs.as_slice())
        .unwrap_or_default();
    own.iter().chain(carried).copied()
}

/// Assigns buffers. `fused` flags the conv steps fused with the pool after them.
pub fn plan(graph: &Graph, mode: Mode, stages: Stages, fused: &[bool]) -> MemoryPlan {
    let n_values = graph.values.len();
    let (views, reuse) = (stages.views, stages.reuse && mode == Mode::Infer);
    let is_fused = |i: usize| fused.get(i).copied().unwrap_or(false);
    // Last step index reading each value; graph outputs live to the end.
    let end = graph.nodes.len();
    let mut last_use = vec![None::<usize>; n_values];
    for i in 0..graph.nodes.len() {
        for v in reads(graph, fused, i) {
            last_use[v.index()] = Some(i);
        }
    }
    for v in &graph.outputs {
        last_use[v.index()] = Some(end);
    }
    let mut value_buffer = vec![u32::MAX; n_values];
    let mut buffers: Vec<BufferSpec> = Vec::new();
    // Values still alive in each buffer.
    let mut residents: Vec<usize> = Vec::new();
    let mut free: Vec<u32> = Vec::new();
    let mut in_place = vec![false; graph.nodes.len()];
    let mut report = MemoryReport::default();

    let new_buffer = |size: u64, buffers: &mut Vec<BufferSpec>, residents: &mut Vec<usize>| {
        buffers.push(BufferSpec {
            bytes_per_sample: size,
        });
        residents.push(0);
        (buffers.len() - 1) as u32
    };

    for &v in &graph.inputs {
        let b = new_buffer(bytes(graph, v), &mut buffers, &mut residents);
        value_buffer[v.index()] = b;
        residents[b as usize] += 1;
        report.one_buffer_per_value_bytes_per_sample += bytes(graph, v);
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        let out = node.output;
        let need = bytes(graph, out);
        report.one_buffer_per_value_bytes_per_sample += need;
        if is_fused(i) {
            // No buffer: the tile lives in scratch. The pool after it takes its inputs over.
            let tile = super::fuse::node_scratch_bytes(graph, i).unwrap_or(0);
            report.scratch_bytes_per_thread = report.scratch_bytes_per_thread.saturating_add(tile);
            continue;
        }
        let first_input = node.inputs.first().copied();
        let dies_here =
            |v: crate::ir::ValueId| last_use[v.index()] == Some(i) && !graph.outputs.contains(&v);
        let chosen = if let (true, true, Some(x)) = (views, node.op.is_view(), first_input) {
            report.views += 1;
            Some(value_buffer[x.index()])
        } else if let (true, true, Some(x)) = (reuse, node.op.can_run_in_place(), first_input) {
            let b = value_buffer[x.index()];
            let sole = residents.get(b as usize) == Some(&1);
            let fits = buffers
                .get(b as usize)
                .is_some_and(|s| s.bytes_per_sample >= need);
            let not_input = !graph.inputs.contains(&x);
            (dies_here(x) && sole && fits && not_input).then(|| {
                in_place[i] = true;
                report.in_place += 1;
                b
            })
        } else {
            None
        };
        let b = match chosen {
            Some(b) => b,
            None if reuse && !free.is_empty() => {
                let best = free
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| buffers[b as usize].bytes_per_sample >= need)
                    .min_by_key(|(_, &b)| buffers[b as usize].bytes_per_sample)
                    .or_else(|| {
                        free.iter()
                            .enumerate()
                            .max_by_key(|(_, &b)| buffers[b as usize].bytes_per_sample)
                    })
                    .map(|(k, _)| k);
                match best {
                    Some(k) => {
                        let b = free.swap_remove(k);
                        let spec = &mut buffers[b as usize];
                        spec.bytes_per_sample = spec.bytes_per_sample.max(need);
                        b
                    }
                    None => new_buffer(need, &mut buffers, &mut residents),
                }
            }
            None => new_buffer(need, &mut buffers, &mut residents),
        };
        value_buffer[out.index()] = b;
        residents[b as usize] += 1;
        // Release inputs whose last use is this step (a fused conv output has no buffer).
        let mut seen = Vec::new();
        for x in reads(graph, fused, i) {
            if seen.contains(&x) || !dies_here(x) || value_buffer[x.index()] == u32::MAX {
                continue;
            }
            seen.push(x);
            let xb = value_buffer[x.index()] as usize;
            residents[xb] = residents[xb].saturating_sub(1);
            if residents[xb] == 0 && reuse {
                free.push(xb as u32);
            }
        }
        // A value no one reads dies at once.
        if last_use[out.index()].is_none() {
            residents[b as usize] = residents[b as usize].saturating_sub(1);
            if residents[b as usize] == 0 && reuse {
                free.push(b);
            }
        }
    }
    // A fused conv output names its pool's buffer (so every index stays valid) but is never
    // written there; the validator and the interpreter skip it.
    for (i, node) in graph.nodes.iter().enumerate() {
        if let (true, Some(pool)) = (is_fused(i), graph.nodes.get(i + 1)) {
            value_buffer[node.output.index()] = value_buffer[pool.output.index()];
        }
    }
    report.peak_bytes_per_sample = buffers.iter().map(|b| b.bytes_per_sample).sum();
    MemoryPlan {
        value_buffer,
        in_place,
        buffers,
        report,
    }
}
