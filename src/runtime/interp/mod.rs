//! The interpreter: runs an [`ExecutionPlan`] forward over its buffers.
//!
//! Input: a plan, its [`Weights`] and one array per model input ([`TensorRef`]: f32, or i32/i64
//! token ids) with any batch size. Output: one `f32` array per model output.
//!
//! Memory: the plan's buffers are allocated once per set of bound sizes (batch `N`, sequence
//! `T`, ...) and reused by every step and every later call with the same sizes; a smaller batch
//! reuses the larger allocation. Before allocating, the bytes needed are computed with checked
//! arithmetic and compared with a budget ([`Interpreter::set_memory_budget`]). Views (flatten,
//! reshape) read their input's buffer as is; in-place steps (activations, batch norm, affine,
//! add, dropout) overwrite their dying input. Conv and recurrent steps keep their scratch
//! memory (im2col patches, recurrent caches) between calls, so the steady state allocates only
//! the returned output arrays. Integer values (token ids and casts to integers) live in a small
//! per-value `i64` store beside the `f32` buffers.
//!
//! Semantics are inference semantics: batch norm uses the moving statistics, dropout is the
//! identity. A plan compiled in `Train` mode gives every value its own buffer, so after
//! [`Interpreter::forward`] every value can be read with [`Interpreter::value`]; the backward
//! pass (next step of the runtime) reads them there.
//!
//! Threading and determinism: conv, recurrent and large dense steps split the batch into one
//! contiguous slice per thread (as many as the current rayon pool has), each with its own
//! scratch, run as the parts of one job of the intra-op pool ([`crate::runtime::pool`], whose
//! workers spin between steps instead of sleeping); a batch too small for more than one slice
//! splits its conv products' rows (or columns) between the pool's threads instead. Every step
//! runs inside `linalg::serial`, so other GEMMs stay on the thread that calls them; run with
//! `MATMUL_NUM_THREADS=1` so matrixmultiply's pool (a CPU without AVX2 + FMA) does not compete
//! with ours. A sample's result does not depend on
//! the slicing (GEMM rows are independent and every element is summed in a fixed order), so
//! outputs are bit-identical for any thread count (tested).

pub mod bench;
pub(crate) mod conv;
pub(crate) mod elementwise;
mod error;
pub(crate) mod exec;
mod signature;
pub mod zoo;

pub use conv::{conv_scratch_len, ScratchUse};
pub use error::{plan_error_diagnostic, RunError};
pub use signature::{Bindings, TensorRef};

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::ir::DType;
use crate::plan::ExecutionPlan;
use crate::runtime::weights::Weights;
use exec::{Memory, StepState};

/// The default activation-memory budget: 4 GiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 4 << 30;

/// Concrete sizes of every value for one set of bindings.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    bindings: Bindings,
    shapes: Vec<Vec<usize>>,
    lens: Vec<usize>,
}

/// Runs one plan with one set of weights.
pub struct Interpreter {
    plan: ExecutionPlan,
    weights: Weights,
    budget: u64,
    layout: Option<Layout>,
    memory: Memory,
    states: Vec<StepState>,
    /// The fused conv outputs, which are never stored whole (`ExecutionPlan::unstored_values`).
    unstored: Vec<bool>,
}

impl Interpreter {
    /// Checks that `weights` fit `plan` and sets up per-step state. Allocates no activations.
    pub fn new(plan: &ExecutionPlan, weights: Weights) -> Result<Self, RunError> {
        crate::plan::validate(plan).map_err(|e| RunError::Plan(e.to_string()))?;
        if weights.entries().len() != plan.params.len() {
            return Err(RunError::Plan(format!(
                "{} weight tensors for {} parameters",
                weights.entries().len(),
                plan.params.len()
            )));
        }
        for (p, e) in plan.params.iter().zip(weights.entries()) {
            if p.name != e.name || e.value.shape() != p.shape.as_slice() {
                return Err(RunError::Plan(format!(
                    "weight `{}` {:?} does not fit parameter `{}` {:?}",
                    e.name,
                    e.value.shape(),
                    p.name,
                    p.shape
                )));
            }
        }
        let states = plan
            .steps
            .iter()
            .map(|s| StepState::for_op(&s.op))
            .collect();
        Ok(Self {
            unstored: plan.unstored_values(),
            plan: plan.clone(),
            weights,
            budget: DEFAULT_MEMORY_BUDGET,
            layout: None,
            memory: Memory::default(),
            states,
        })
    }

    /// Sets the activation-memory budget in bytes (checked before any allocation).
    pub fn set_memory_budget(&mut self, bytes: u64) {
        self.budget = bytes;
    }

    pub fn plan(&self) -> &ExecutionPlan {
        &self.plan
    }

    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// Mutable weights (training updates them in place between steps).
    pub fn weights_mut(&mut self) -> &mut Weights {
        &mut self.weights
    }

    /// Runs the model and returns its outputs.
    pub fn run(&mut self, inputs: &[TensorRef<'_>]) -> Result<Vec<ArrayD<f32>>, RunError> {
        self.forward(inputs)?;
        self.plan
            .outputs
            .iter()
            .map(|&v| {
                self.value(v)
                    .map(|a| a.to_owned())
                    .ok_or_else(|| RunError::Plan(format!("output value {v} is not available")))
            })
            .collect()
    }

    /// Runs every step; afterwards [`Interpreter::value`] reads values still in their buffers.
    pub fn forward(&mut self, inputs: &[TensorRef<'_>]) -> Result<(), RunError> {
        let facts: Vec<(&str, &crate::ir::Fact)> = self
            .plan
            .inputs
            .iter()
            .filter_map(|&v| self.plan.values.get(v as usize))
            .map(|v| (v.name.as_str(), &v.fact))
            .collect();
        let bindings = signature::bind(&facts, inputs)?;
        self.prepare(bindings)?;
        for (&v, x) in self.plan.inputs.iter().zip(inputs) {
            let name = self
                .plan
                .values
                .get(v as usize)
                .map_or("", |p| p.name.as_str());
            self.memory.write_input(&self.plan, v, name, x)?;
        }
        // Steps that split the batch run one slice per thread; their GEMMs stay serial.
        crate::runtime::kernels::linalg::serial(|| self.run_steps())
    }

    /// Runs every step in order, a fused conv with the pool it carries.
    fn run_steps(&mut self) -> Result<(), RunError> {
        let Some(layout) = &self.layout else {
            return Err(RunError::Plan("no layout".into()));
        };
        let mut steps = self.plan.steps.iter().zip(self.states.iter_mut());
        while let Some((step, state)) = steps.next() {
            if step.fused_with_next {
                // The validator checked that a pool step follows; it runs inside this one.
                let (pool, _) = steps
                    .next()
                    .ok_or_else(|| RunError::Plan("a fused step without its pool".into()))?;
                exec::run_conv_pool(
                    step,
                    pool,
                    &self.plan,
                    &self.weights,
                    layout,
                    &mut self.memory,
                    state,
                )?;
                continue;
            }
            exec::run_step(
                step,
                &self.plan,
                &self.weights,
                layout,
                &mut self.memory,
                state,
            )?;
        }
        Ok(())
    }

    /// Value `v` as computed by the last [`Interpreter::forward`] (integer values as f32). In an
    /// inference plan a value whose buffer was reused later holds the later value's data, and a
    /// fused conv output (never stored whole) is `None`; a `Train` plan keeps every value.
    pub fn value(&self, v: u32) -> Option<ArrayViewD<'_, f32>> {
        if self.unstored.get(v as usize).copied().unwrap_or(false) {
            return None;
        }
        let layout = self.layout.as_ref()?;
        let shape = layout.shapes.get(v as usize)?;
        let len = *layout.lens.get(v as usize)?;
        let pv = self.plan.values.get(v as usize)?;
        if pv.fact.dtype != DType::F32 {
            return None;
        }
        let data = self.memory.buffers.get(pv.buffer as usize)?.get(..len)?;
        ArrayViewD::from_shape(IxDyn(shape), data).ok()
    }

    /// Integer value `v` (token ids, integer casts) from the last forward.
    pub fn int_value(&self, v: u32) -> Option<ArrayD<i64>> {
        let layout = self.layout.as_ref()?;
        let shape = layout.shapes.get(v as usize)?;
        let data = self.memory.ints.get(v as usize)?;
        ArrayD::from_shape_vec(IxDyn(shape), data.clone()).ok()
    }

    /// The bytes of memory a run with these bindings needs: activations and conv scratch.
    fn layout_for(&self, bindings: Bindings) -> Result<(Layout, Vec<usize>, u64), RunError> {
        let mut shapes = Vec::with_capacity(self.plan.values.len());
        let mut lens = Vec::with_capacity(self.plan.values.len());
        let mut buffer_lens = vec![0usize; self.plan.buffers.len()];
        let mut int_elems = 0usize;
        let overflow = |batch| RunError::MemoryBudget {
            batch,
            needed: u64::MAX,
            budget: self.budget,
        };
        let batch = self
            .plan
            .inputs
            .first()
            .and_then(|&v| self.plan.values.get(v as usize))
            .map_or(1, |v| bindings.batch(&v.fact));
        let unstored: Vec<u32> = self
            .plan
            .steps
            .iter()
            .filter(|s| s.fused_with_next)
            .map(|s| s.output)
            .collect();
        for (k, v) in self.plan.values.iter().enumerate() {
            let shape = bindings.shape(&v.fact).ok_or_else(|| {
                RunError::Plan(format!("value {} has an unbound symbolic size", v.name))
            })?;
            let len = shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| overflow(batch))?;
            if unstored.contains(&(k as u32)) {
                // A fused conv output: only per-thread tiles, counted below.
            } else if v.fact.dtype == DType::F32 {
                let slot = buffer_lens
                    .get_mut(v.buffer as usize)
                    .ok_or_else(|| RunError::Plan(format!("value {} has no buffer", v.name)))?;
                *slot = (*slot).max(len);
            } else {
                int_elems = int_elems.checked_add(len).ok_or_else(|| overflow(batch))?;
            }
            shapes.push(shape);
            lens.push(len);
        }
        let f32_elems = buffer_lens
            .iter()
            .try_fold(0usize, |a, &l| a.checked_add(l))
            .ok_or_else(|| overflow(batch))?;
        let needed = (f32_elems as u64)
            .checked_mul(4)
            .and_then(|a| a.checked_add((int_elems as u64).checked_mul(8)?))
            .ok_or_else(|| overflow(batch))?;
        // The plan's own estimate counts too (it is what `modelc inspect` shows), and so does
        // the scratch the unfused conv steps keep beside the buffers (patch matrices), the
        // attention steps' (projections and scores per slice), and the fused conv + pool
        // steps' tiles, one per thread.
        let threads = rayon::current_num_threads();
        let scratch = conv_scratch_len(
            &self.plan,
            |v| shapes.get(v as usize).cloned(),
            ScratchUse::Inference { threads },
        )
        .and_then(|elems| elems.checked_mul(4))
        .ok_or_else(|| overflow(batch))?;
        let attention = crate::runtime::ops::attention::inference_scratch_len(
            &self.plan,
            |v| shapes.get(v as usize).cloned(),
            threads,
        )
        .and_then(|elems| elems.checked_mul(4))
        .ok_or_else(|| overflow(batch))?;
        let tiles = self
            .plan
            .memory
            .scratch_bytes_per_thread
            .checked_mul(threads as u64)
            .ok_or_else(|| overflow(batch))?;
        let needed = needed
            .max(self.plan.peak_bytes(batch as u64))
            .checked_add(scratch)
            .and_then(|n| n.checked_add(attention))
            .and_then(|n| n.checked_add(tiles))
            .ok_or_else(|| overflow(batch))?;
        Ok((
            Layout {
                bindings,
                shapes,
                lens,
            },
            buffer_lens,
            needed,
        ))
    }

    /// Sizes buffers for `bindings` (no-op when they are unchanged).
    fn prepare(&mut self, bindings: Bindings) -> Result<(), RunError> {
        if self.layout.as_ref().is_some_and(|l| l.bindings == bindings) {
            return Ok(());
        }
        let (layout, buffer_lens, needed) = self.layout_for(bindings)?;
        if needed > self.budget {
            let batch = self
                .plan
                .inputs
                .first()
                .and_then(|&v| self.plan.values.get(v as usize))
                .map_or(1, |v| layout.bindings.batch(&v.fact));
            return Err(RunError::MemoryBudget {
                batch,
                needed,
                budget: self.budget,
            });
        }
        self.memory.resize(&self.plan, &layout.lens, &buffer_lens)?;
        self.layout = Some(layout);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
