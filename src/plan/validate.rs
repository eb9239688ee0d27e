//! Validation of plans read from files: untrusted input, checked before anything runs.

use super::{ExecutionPlan, FORMAT_VERSION};
use crate::ir;
use std::fmt;

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Not RON, truncated, or fields of the wrong type.
    Syntax(String),
    /// Written by a different plan format.
    Version { found: u32, expected: u32 },
    /// Indices out of range, shapes that do not agree, buffers that do not fit.
    Inconsistent(String),
    /// A stored preprocessing step whose samples would exceed the data budget.
    Preprocessing(String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Syntax(m) => write!(f, "not a valid plan: {m}"),
            PlanError::Version { found, expected } => {
                write!(f, "plan format version {found} is not supported (this modelc reads version {expected})")
            }
            PlanError::Inconsistent(m) => write!(f, "the plan does not hold together: {m}"),
            PlanError::Preprocessing(m) => write!(f, "the plan's preprocessing {m}"),
        }
    }
}

impl std::error::Error for PlanError {}

fn bad(m: impl Into<String>) -> PlanError {
    PlanError::Inconsistent(m.into())
}

/// Checks everything the interpreter relies on.
pub fn validate(plan: &ExecutionPlan) -> Result<(), PlanError> {
    if plan.format_version != FORMAT_VERSION {
        return Err(PlanError::Version {
            found: plan.format_version,
            expected: FORMAT_VERSION,
        });
    }
    let n = plan.values.len();
    let in_range = |v: u32| (v as usize) < n;
    for (i, s) in plan.steps.iter().enumerate() {
        if !in_range(s.output) || s.inputs.iter().any(|&v| !in_range(v)) {
            return Err(bad(format!(
                "step {i} ({}) refers to a value that does not exist",
                s.name
            )));
        }
    }
    if plan.outputs.is_empty() {
        return Err(bad("the plan has no outputs: it computes nothing"));
    }
    if !plan.output_names.is_empty() && plan.output_names.len() != plan.outputs.len() {
        return Err(bad(format!(
            "the plan names {} outputs but has {}",
            plan.output_names.len(),
            plan.outputs.len()
        )));
    }
    if plan
        .inputs
        .iter()
        .chain(&plan.outputs)
        .any(|&v| !in_range(v))
    {
        return Err(bad(
            "an input or output refers to a value that does not exist",
        ));
    }
    // Shapes, handles, definition order: the IR verifier.
    ir::verify(&plan.to_graph()).map_err(|e| bad(e.to_string()))?;
    check_fused_pairs(plan)?;
    // Buffers: in range, large enough, and never shared by two live values (except views and
    // in-place steps, which share on purpose).
    let unstored = plan.unstored_values();
    for (v, _) in plan.values.iter().zip(&unstored).filter(|(_, &u)| !u) {
        let b = plan
            .buffers
            .get(v.buffer as usize)
            .ok_or_else(|| bad(format!("value {} has no buffer", v.name)))?;
        let need = v.fact.bytes_per_sample().unwrap_or(0) as u64;
        if b.bytes_per_sample < need {
            return Err(bad(format!(
                "buffer {} is smaller than value {} ({} < {need} bytes per sample)",
                v.buffer, v.name, b.bytes_per_sample
            )));
        }
    }
    check_liveness(plan)?;
    check_preprocessing(plan)?;
    let total: u64 = plan.buffers.iter().map(|b| b.bytes_per_sample).sum();
    if total != plan.memory.peak_bytes_per_sample {
        return Err(bad("the memory report does not match the buffer table"));
    }
    Ok(())
}

/// Every stored preprocessing step makes samples within the data budget (the rule `check`
/// applies to the spec, `data::budget`), so a hand-edited `resize(100000, 100000)` is refused
/// here rather than by the allocator when `run` applies it. The channels of a `resize` come from
/// the model's input walked back through the steps (1 where no step fixes them: a lower bound).
fn check_preprocessing(plan: &ExecutionPlan) -> Result<(), PlanError> {
    use crate::data::budget;
    use crate::data::spec::Transform;
    let Some(steps) = &plan.preprocessing else {
        return Ok(());
    };
    let input_dims = plan
        .inputs
        .first()
        .and_then(|&v| plan.values.get(v as usize))
        .map(|v| v.fact.dims.as_slice())
        .unwrap_or_default();
    let known = |d: &ir::Dim| match d {
        ir::Dim::Known(n) => Some(*n),
        ir::Dim::Symbol(_) => None,
    };
    // The channels of an image at the end of the steps, walked back (a reshape to [h, w, c] sets them).
    let mut channels = match input_dims {
        [_, _, _, c] => known(c),
        _ => None,
    };
    for (i, step) in steps.iter().enumerate().rev() {
        let (what, sample, width): (String, Vec<usize>, u64) = match &step.op {
            Transform::Resize { height, width } => (
                format!("resize({height}, {width})"),
                vec![*height, *width, channels.unwrap_or(1)],
                4,
            ),
            Transform::Reshape { shape } => {
                channels = match shape.as_slice() {
                    [_, _, c] => Some(*c),
                    _ => None,
                };
                ("reshape".into(), shape.clone(), 4)
            }
            Transform::Pad { length, .. } => (format!("pad({length})"), vec![*length], 8),
            Transform::Window { size, .. } => (format!("window({size})"), vec![*size], 4),
            Transform::OneHot {
                classes: Some(classes),
            } => (format!("one_hot({classes})"), vec![*classes as usize], 4),
            _ => continue,
        };
        let bytes = budget::bytes(1, &sample, width);
        if !budget::within(bytes) {
            return Err(PlanError::Preprocessing(format!(
                "step {} (`{what}`) makes samples of at least {} bytes ({}), more than the {} data budget",
                i + 1,
                bytes.map_or_else(|| "2^64".to_string(), |b| b.to_string()),
                budget::describe(bytes),
                budget::describe(Some(budget::BUDGET))
            )));
        }
    }
    Ok(())
}

/// Every `fused_with_next` step is the conv2d of a pair the interpreter can run as one (the
/// rules of [`super::fuse`]), and the scratch figure is the one those pairs need.
fn check_fused_pairs(plan: &ExecutionPlan) -> Result<(), PlanError> {
    let mut scratch = 0u64;
    if !plan.steps.iter().any(|s| s.fused_with_next) {
        return if plan.memory.scratch_bytes_per_thread == 0 {
            Ok(())
        } else {
            Err(bad(
                "the memory report's scratch figure does not match the fused steps",
            ))
        };
    }
    let graph = plan.to_graph();
    let mut readers = vec![0usize; plan.values.len()];
    for v in plan
        .steps
        .iter()
        .flat_map(|s| &s.inputs)
        .chain(&plan.outputs)
    {
        if let Some(r) = readers.get_mut(*v as usize) {
            *r += 1;
        }
    }
    for (i, s) in plan.steps.iter().enumerate() {
        if !s.fused_with_next {
            continue;
        }
        let refuse = |why: &str| {
            bad(format!(
                "step {i} ({}) is fused with the next: {why}",
                s.name
            ))
        };
        if plan.mode != crate::passes::Mode::Infer {
            return Err(refuse("only inference plans fuse steps"));
        }
        if !matches!(s.op, ir::Op::Conv2d { .. }) {
            return Err(refuse("it is not a conv2d"));
        }
        let next = plan
            .steps
            .get(i + 1)
            .ok_or_else(|| refuse("it is the last step"))?;
        if !super::fuse::is_fusable_pool(&next.op) || next.inputs.as_slice() != [s.output] {
            return Err(refuse("the next step is not a pool of its output"));
        }
        // The pool reads it once; any other reader (a step or a graph output) is one too many.
        if readers.get(s.output as usize) != Some(&1) {
            return Err(refuse("its output is read elsewhere"));
        }
        let tile = super::fuse::node_scratch_bytes(&graph, i)
            .ok_or_else(|| refuse("its output size is not known per sample"))?;
        scratch = scratch.saturating_add(tile);
    }
    if scratch != plan.memory.scratch_bytes_per_thread {
        return Err(bad(
            "the memory report's scratch figure does not match the fused steps",
        ));
    }
    Ok(())
}

/// The values step `i` reads: a fused conv's inputs are read by the pool step after it.
fn reads(plan: &ExecutionPlan, i: usize) -> Vec<u32> {
    let own = plan
        .steps
        .get(i)
        .filter(|s| !s.fused_with_next)
        .map(|s| s.inputs.clone())
        .unwrap_or_default();
    let carried = i
        .checked_sub(1)
        .and_then(|p| plan.steps.get(p))
        .filter(|s| s.fused_with_next)
        .map(|s| s.inputs.clone())
        .unwrap_or_default();
    own.into_iter().chain(carried).collect()
}

/// Simulates the steps: a step may only write a buffer that holds no value still needed,
/// unless it is a view of its input or an in-place step over an input that dies there. A fused
/// conv step writes no buffer; the pool after it reads the conv's inputs. Linear in the plan:
/// each step looks only at the values held in the buffer it writes, and a value leaves its
/// buffer's list once, when it is found dead there.
fn check_liveness(plan: &ExecutionPlan) -> Result<(), PlanError> {
    let n = plan.values.len();
    let end = plan.steps.len();
    let mut last_use = vec![None::<usize>; n];
    for i in 0..plan.steps.len() {
        for v in reads(plan, i) {
            last_use[v as usize] = Some(i);
        }
    }
    for &v in &plan.outputs {
        last_use[v as usize] = Some(end);
    }
    // The step computing each view value, to follow view chains back to their source.
    let mut view_step = vec![None::<usize>; n];
    for (i, s) in plan.steps.iter().enumerate() {
        if s.op.is_view() {
            view_step[s.output as usize] = Some(i);
        }
    }
    // The values each buffer holds (some may have died since: pruned when the buffer is next
    // written).
    let mut held: Vec<Vec<u32>> = vec![Vec::new(); plan.buffers.len()];
    let hold = |held: &mut Vec<Vec<u32>>, v: u32| {
        if let Some(list) = plan
            .values
            .get(v as usize)
            .and_then(|pv| held.get_mut(pv.buffer as usize))
        {
            list.push(v);
        }
    };
    for &v in &plan.inputs {
        hold(&mut held, v);
    }
    for (i, s) in plan.steps.iter().enumerate() {
        if s.fused_with_next {
            continue;
        }
        let read_here = reads(plan, i);
        let out_buf = plan.values[s.output as usize].buffer;
        let first = s.inputs.first().copied();
        let shares_ok = |v: u32| {
            let via_view = s.op.is_view() && Some(v) == first;
            let via_in_place = s.in_place
                && s.op.can_run_in_place()
                && Some(v) == first
                && last_use[v as usize] == Some(i);
            via_view || via_in_place
        };
        let mut occupants = held
            .get_mut(out_buf as usize)
            .map(std::mem::take)
            .unwrap_or_default();
        occupants.retain(|&v| last_use[v as usize].is_some_and(|u| u >= i));
        for &v in &occupants {
            let alive_after = last_use[v as usize].is_some_and(|u| u > i);
            let used_here = read_here.contains(&v);
            // A value sharing through a view chain is fine only if it is the view's source.
            if (alive_after || used_here)
                && !shares_ok(v)
                && !(s.op.is_view() && is_view_ancestor(plan, &view_step, v, first))
            {
                return Err(bad(format!(
                    "step {} writes buffer {out_buf} while value {} in it is still needed",
                    s.name, plan.values[v as usize].name
                )));
            }
        }
        occupants.retain(|&v| last_use[v as usize].is_some_and(|u| u > i));
        if let Some(list) = held.get_mut(out_buf as usize) {
            *list = occupants;
        }
        hold(&mut held, s.output);
    }
    Ok(())
}

/// Whether `v` reaches `of` through views (a flatten of a reshape of `v` shares `v`'s buffer).
fn is_view_ancestor(
    plan: &ExecutionPlan,
    view_step: &[Option<usize>],
    v: u32,
    of: Option<u32>,
) -> bool {
    let mut cur = of;
    for _ in 0..plan.steps.len() {
        let Some(c) = cur else { return false };
        if c == v {
            return true;
        }
        cur = view_step
            .get(c as usize)
            .copied()
            .flatten()
            .and_then(|i| plan.steps.get(i))
            .and_then(|s| s.inputs.first().copied());
    }
    false
}
