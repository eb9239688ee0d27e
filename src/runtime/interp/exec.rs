//! One step of a plan: read its inputs from their buffers, write its output buffer.
//!
//! Input: a [`Step`], the concrete shapes of the [`super::Layout`], the weights, and the
//! buffers. Output: the step's output value written into its buffer. Invariants: a step's
//! output buffer is taken out of the buffer table while the step runs, so an input sharing it
//! (a view or an in-place step) is read from the output buffer itself, and any other input
//! found there is refused as a plan error rather than aliased. Every slice is taken with a
//! checked `get`; a size that does not fit is a [`RunError::Plan`], never a panic.
//!
//! What each op computes is its family's (`runtime::ops`, dispatched by `ops::infer_step`
//! with an [`InferStep`]); this module holds the phase plumbing they share: the buffers
//! ([`Memory`]), per-step scratch ([`StepState`]), the step's view of the plan ([`Ctx`]),
//! lending the output buffer, copies into it, and integer-valued steps.

use ndarray::{ArrayView2, ArrayViewD, ArrayViewMutD, IxDyn};

use super::conv::ConvStep;
use super::error::RunError;
use super::signature::{non_finite, TensorRef};
use super::Layout;
use crate::ir::{DType, Op, Padding, ParamId, Window};
use crate::plan::{ExecutionPlan, Step};
use crate::runtime::kernels::{pool, rnn, KernelError};
use crate::runtime::weights::Weights;

/// Room in `v` for `len` elements, asked of the system fallibly.
fn reserve<T>(v: &mut Vec<T>, len: usize) -> Result<(), RunError> {
    let more = len.saturating_sub(v.len());
    crate::util::alloc::fallible(|| v.try_reserve_exact(more)).map_err(|_| RunError::OutOfMemory {
        bytes: (len as u64).saturating_mul(size_of::<T>() as u64),
    })
}

/// The activation buffers: one `f32` vector per plan buffer, one `i64` vector per value (empty
/// unless the value is an integer).
#[derive(Debug, Default)]
pub struct Memory {
    pub buffers: Vec<Vec<f32>>,
    pub ints: Vec<Vec<i64>>,
}

impl Memory {
    /// Sizes every buffer; grows allocations only when needed, fallibly (E0904 when the
    /// system refuses memory the budget allowed).
    pub fn resize(
        &mut self,
        plan: &ExecutionPlan,
        lens: &[usize],
        buffer_lens: &[usize],
    ) -> Result<(), RunError> {
        self.buffers.resize_with(buffer_lens.len(), Vec::new);
        for (b, &len) in self.buffers.iter_mut().zip(buffer_lens) {
            reserve(b, len)?;
            b.resize(len, 0.0);
        }
        self.ints.resize_with(plan.values.len(), Vec::new);
        for ((ints, v), &len) in self.ints.iter_mut().zip(&plan.values).zip(lens) {
            let want = if v.fact.dtype == DType::F32 { 0 } else { len };
            reserve(ints, want)?;
            ints.resize(want, 0);
        }
        Ok(())
    }

    /// Copies input `v` (named `name`) into its storage, refusing NaN/Inf.
    pub fn write_input(
        &mut self,
        plan: &ExecutionPlan,
        v: u32,
        name: &str,
        x: &TensorRef<'_>,
    ) -> Result<(), RunError> {
        let pv = plan
            .values
            .get(v as usize)
            .ok_or_else(|| RunError::Plan(format!("input value {v} does not exist")))?;
        match x {
            TensorRef::F32(a) => {
                if let Some((count, first)) = non_finite(a) {
                    return Err(RunError::NonFiniteInput {
                        input: name.to_string(),
                        count,
                        first,
                    });
                }
                let dst = self
                    .buffers
                    .get_mut(pv.buffer as usize)
                    .and_then(|b| b.get_mut(..a.len()))
                    .ok_or_else(|| RunError::Plan(format!("input {name} has no room")))?;
                match a.as_slice() {
                    Some(src) => dst.copy_from_slice(src),
                    None => dst.iter_mut().zip(a.iter()).for_each(|(d, &s)| *d = s),
                }
            }
            TensorRef::I32(a) => self.write_ints(v, name, a.iter().map(|&i| i64::from(i)))?,
            TensorRef::I64(a) => self.write_ints(v, name, a.iter().copied())?,
        }
        Ok(())
    }

    fn write_ints(
        &mut self,
        v: u32,
        name: &str,
        it: impl ExactSizeIterator<Item = i64>,
    ) -> Result<(), RunError> {
        let dst = self
            .ints
            .get_mut(v as usize)
            .filter(|d| d.len() == it.len())
            .ok_or_else(|| RunError::Plan(format!("input {name} has no room")))?;
        for (d, s) in dst.iter_mut().zip(it) {
            *d = s;
        }
        Ok(())
    }
}

/// Scratch memory a step keeps between calls.
#[derive(Debug, Default)]
pub enum StepState {
    #[default]
    None,
    Conv(Box<ConvStep>),
    /// One cache per batch slice (one slice per thread).
    Rnn(Vec<rnn::RnnCache>),
    /// A bidirectional layer's caches and outputs, per direction.
    Bidirectional(Box<crate::runtime::ops::bidirectional::BiInferState>),
    /// Multi-head attention's per-slice scratch.
    Attention(Box<crate::runtime::kernels::attention::MhaScratch>),
}

impl StepState {
    /// The state a step of `op` keeps (its family's, see `runtime::ops::infer_state`).
    pub fn for_op(op: &Op) -> Self {
        crate::runtime::ops::infer_state(op)
    }
}

pub(crate) fn plan_err(step: &Step, what: &str) -> RunError {
    RunError::Plan(format!("step `{}`: {what}", step.name))
}

/// What a step reads: value facts and concrete shapes.
pub(crate) struct Ctx<'a> {
    pub step: &'a Step,
    pub plan: &'a ExecutionPlan,
    pub(crate) layout: &'a Layout,
    pub weights: &'a Weights,
}

impl<'a> Ctx<'a> {
    pub fn shape(&self, v: u32) -> Result<&'a [usize], RunError> {
        self.layout
            .shapes
            .get(v as usize)
            .map(Vec::as_slice)
            .ok_or_else(|| plan_err(self.step, "value without a shape"))
    }

    pub fn len(&self, v: u32) -> Result<usize, RunError> {
        self.layout
            .lens
            .get(v as usize)
            .copied()
            .ok_or_else(|| plan_err(self.step, "value without a size"))
    }

    pub fn buffer(&self, v: u32) -> Result<usize, RunError> {
        self.plan
            .values
            .get(v as usize)
            .map(|p| p.buffer as usize)
            .ok_or_else(|| plan_err(self.step, "value without a buffer"))
    }

    pub fn dtype(&self, v: u32) -> Result<DType, RunError> {
        self.plan
            .values
            .get(v as usize)
            .map(|p| p.fact.dtype)
            .ok_or_else(|| plan_err(self.step, "unknown value"))
    }

    pub fn input(&self, i: usize) -> Result<u32, RunError> {
        self.step
            .inputs
            .get(i)
            .copied()
            .ok_or_else(|| plan_err(self.step, "missing input"))
    }

    /// The data of f32 value `v` from a buffer other than the output's.
    pub fn read<'b>(&self, buffers: &'b [Vec<f32>], v: u32) -> Result<&'b [f32], RunError> {
        let len = self.len(v)?;
        buffers
            .get(self.buffer(v)?)
            .and_then(|b| b.get(..len))
            .ok_or_else(|| plan_err(self.step, "an input shares the output buffer"))
    }

    pub fn param(&self, id: ParamId) -> Result<&'a ndarray::ArrayD<f32>, RunError> {
        self.weights
            .get(id)
            .ok_or_else(|| plan_err(self.step, "missing parameter"))
    }

    pub fn vector(&self, id: ParamId) -> Result<&'a [f32], RunError> {
        self.param(id)?
            .as_slice()
            .ok_or_else(|| plan_err(self.step, "parameter not contiguous"))
    }

    pub fn matrix(&self, id: ParamId) -> Result<ArrayView2<'a, f32>, RunError> {
        self.param(id)?
            .view()
            .into_dimensionality()
            .map_err(|_| plan_err(self.step, "parameter is not a matrix"))
    }

    pub fn kernel<T>(&self, r: Result<T, KernelError>) -> Result<T, RunError> {
        r.map_err(|e| RunError::kernel(&self.step.name, e))
    }
}

/// `data` as a view of `shape`.
pub(crate) fn view<'b>(
    data: &'b [f32],
    shape: &[usize],
    ctx: &Ctx<'_>,
) -> Result<ArrayViewD<'b, f32>, RunError> {
    ArrayViewD::from_shape(IxDyn(shape), data).map_err(|e| plan_err(ctx.step, &e.to_string()))
}

/// `data` as a mutable view of `shape`.
pub(crate) fn view_mut<'b>(
    data: &'b mut [f32],
    shape: &[usize],
    ctx: &Ctx<'_>,
) -> Result<ArrayViewMutD<'b, f32>, RunError> {
    ArrayViewMutD::from_shape(IxDyn(shape), data).map_err(|e| plan_err(ctx.step, &e.to_string()))
}

/// Runs `step`, writing its output value.
pub fn run_step(
    step: &Step,
    plan: &ExecutionPlan,
    weights: &Weights,
    layout: &Layout,
    memory: &mut Memory,
    state: &mut StepState,
) -> Result<(), RunError> {
    let ctx = Ctx {
        step,
        plan,
        layout,
        weights,
    };
    let out = step.output;
    if ctx.dtype(out)? != DType::F32 {
        return run_int_step(&ctx, memory);
    }
    let out_b = ctx.buffer(out)?;
    let out_len = ctx.len(out)?;
    with_output_buffer(memory, step, out_b, out_len, |memory, dst| {
        crate::runtime::ops::infer_step(InferStep {
            ctx: &ctx,
            memory,
            out_b,
            dst,
            state,
        })
    })
}

/// What an f32 step's inference reads and writes: the step's [`Ctx`], the buffers, the output
/// slice `dst` (the first values of buffer `out_b`, lent out of `memory` while the step runs)
/// and the step's scratch.
pub(crate) struct InferStep<'s, 'a> {
    pub ctx: &'s Ctx<'a>,
    pub memory: &'s Memory,
    pub out_b: usize,
    pub dst: &'s mut [f32],
    pub state: &'s mut StepState,
}

/// Runs a fused conv2d step and the pool step after it (`fuse-conv-pool`); see
/// [`crate::runtime::ops::conv::infer_conv_pool`].
pub fn run_conv_pool(
    conv: &Step,
    pool: &Step,
    plan: &ExecutionPlan,
    weights: &Weights,
    layout: &Layout,
    memory: &mut Memory,
    state: &mut StepState,
) -> Result<(), RunError> {
    let ctx = Ctx {
        step: conv,
        plan,
        layout,
        weights,
    };
    crate::runtime::ops::conv::infer_conv_pool(&ctx, pool, memory, state)
}

/// Lends buffer `out_b`'s first `out_len` values to `write` as the output of `step`, while
/// `write` still reads the other buffers through `memory`; the buffer goes back afterwards,
/// whatever `write` returned.
pub(crate) fn with_output_buffer(
    memory: &mut Memory,
    step: &Step,
    out_b: usize,
    out_len: usize,
    write: impl FnOnce(&mut Memory, &mut [f32]) -> Result<(), RunError>,
) -> Result<(), RunError> {
    let mut out_buf = std::mem::take(
        memory
            .buffers
            .get_mut(out_b)
            .ok_or_else(|| plan_err(step, "output buffer missing"))?,
    );
    let result = match out_buf.get_mut(..out_len) {
        Some(dst) => write(memory, dst),
        None => Err(plan_err(step, "output buffer too small")),
    };
    if let Some(slot) = memory.buffers.get_mut(out_b) {
        *slot = out_buf;
    }
    result
}

/// Whether input 0 already sits in the output buffer (a view or an in-place step).
fn shares_output(ctx: &Ctx<'_>, out_b: usize) -> Result<bool, RunError> {
    Ok(ctx.buffer(ctx.input(0)?)? == out_b)
}

/// Makes `dst` hold input 0: nothing to do when it shares the buffer, else a copy.
pub(crate) fn copy_first(
    ctx: &Ctx<'_>,
    memory: &Memory,
    out_b: usize,
    dst: &mut [f32],
) -> Result<(), RunError> {
    let x = ctx.input(0)?;
    if ctx.dtype(x)? != DType::F32 {
        let src = memory.ints.get(x as usize).filter(|s| s.len() == dst.len());
        let src = src.ok_or_else(|| plan_err(ctx.step, "integer input size"))?;
        dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s as f32);
        return Ok(());
    }
    if shares_output(ctx, out_b)? {
        if ctx.step.in_place || ctx.step.op.is_view() {
            return Ok(());
        }
        return Err(plan_err(ctx.step, "input shares the output buffer"));
    }
    let src = ctx.read(&memory.buffers, x)?;
    if src.len() != dst.len() {
        return Err(plan_err(ctx.step, "input and output sizes differ"));
    }
    dst.copy_from_slice(src);
    Ok(())
}

/// The last axis of the step's output (1 for a scalar).
pub(crate) fn last_dim(ctx: &Ctx<'_>) -> Result<usize, RunError> {
    Ok(ctx.shape(ctx.step.output)?.last().copied().unwrap_or(1))
}

/// The pooling parameters of `window`; explicit padding other than zero and dilation have no
/// pool kernel.
pub(crate) fn pool_params(
    kind: pool::PoolKind,
    window: &Window,
    ctx: &Ctx<'_>,
) -> Result<pool::Pool2dParams, RunError> {
    let padding = match window.padding {
        Padding::Valid | Padding::Explicit([0, 0, 0, 0]) => pool::PoolPadding::Valid,
        Padding::Same => pool::PoolPadding::Same,
        Padding::Explicit(_) => {
            return Err(plan_err(ctx.step, "explicit pool padding is not supported"))
        }
    };
    if window.dilation != [1, 1] {
        return Err(plan_err(ctx.step, "dilated pools are not supported"));
    }
    Ok(pool::Pool2dParams {
        kind,
        pool: (window.size[0], window.size[1]),
        stride: (window.strides[0], window.strides[1]),
        padding,
    })
}

/// A rank-4 shape as an array.
pub(crate) fn dims4(s: &[usize], ctx: &Ctx<'_>) -> Result<[usize; 4], RunError> {
    <[usize; 4]>::try_from(s).map_err(|_| plan_err(ctx.step, "expected a rank-4 value"))
}

/// Steps whose output is an integer value: casts to an integer, views of integer values.
fn run_int_step(ctx: &Ctx<'_>, memory: &mut Memory) -> Result<(), RunError> {
    let step = ctx.step;
    let x = ctx.input(0)?;
    let out = step.output as usize;
    let to = ctx.dtype(step.output)?;
    let clamp = |v: i64| match to {
        DType::I32 => v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => v,
    };
    match &step.op {
        Op::Cast { .. } | Op::Flatten | Op::Reshape { .. } => {}
        _ => return Err(plan_err(step, "this op cannot produce integers")),
    }
    let mut dst = std::mem::take(
        memory
            .ints
            .get_mut(out)
            .ok_or_else(|| plan_err(step, "no integer storage"))?,
    );
    let result = if ctx.dtype(x)? == DType::F32 {
        ctx.read(&memory.buffers, x).and_then(|src| {
            if src.len() != dst.len() {
                return Err(plan_err(step, "cast sizes differ"));
            }
            // Truncation toward zero, saturating (TensorFlow's cast; NaN becomes 0).
            dst.iter_mut()
                .zip(src)
                .for_each(|(d, &s)| *d = clamp(s as i64));
            Ok(())
        })
    } else {
        match memory.ints.get(x as usize) {
            Some(src) if src.len() == dst.len() => {
                dst.iter_mut().zip(src).for_each(|(d, &s)| *d = clamp(s));
                Ok(())
            }
            _ => Err(plan_err(step, "integer input size")),
        }
    };
    if let Some(slot) = memory.ints.get_mut(out) {
        *slot = dst;
    }
    result
}
