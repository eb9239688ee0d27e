//! One step of a plan: read its inputs from their buffers, write its output buffer.
//!
//! Input: a [`Step`], the concrete shapes of the [`super::Layout`], the weights, and the
//! buffers. Output: the step's output value written into its buffer. Invariants: a step's
//! output buffer is taken out of the buffer table while the step runs, so an input sharing it
//! (a view or an in-place step) is read from the output buffer itself, and any other input
//! found there is refused as a plan error rather than aliased. Every slice is taken with a
//! checked `get`; a size that does not fit is a [`RunError::Plan`], never a panic.

use ndarray::{
    ArrayView1, ArrayView2, ArrayView3, ArrayView4, ArrayViewD, ArrayViewMut4, ArrayViewMutD, IxDyn,
};

use super::conv::ConvStep;
use super::elementwise::{
    activation_in_place, add_in_place, affine_in_place, batch_norm_in_place, bias_activation,
};
use super::error::RunError;
use super::signature::{non_finite, TensorRef};
use super::Layout;
use crate::ir::{DType, Op, Padding, ParamId, ParamSource, Recipe, RnnCell, Window};
use crate::plan::{ExecutionPlan, Step};
use crate::runtime::kernels::{dense, embedding, layer_norm, merge, pool, rnn, KernelError};
use crate::runtime::weights::Weights;

/// The activation buffers: one `f32` vector per plan buffer, one `i64` vector per value (empty
/// unless the value is an integer).
#[derive(Debug, Default)]
pub struct Memory {
    pub buffers: Vec<Vec<f32>>,
    pub ints: Vec<Vec<i64>>,
}

impl Memory {
    /// Sizes every buffer; grows allocations only when needed.
    pub fn resize(&mut self, plan: &ExecutionPlan, lens: &[usize], buffer_lens: &[usize]) {
        self.buffers.resize_with(buffer_lens.len(), Vec::new);
        for (b, &len) in self.buffers.iter_mut().zip(buffer_lens) {
            b.resize(len, 0.0);
        }
        self.ints.resize_with(plan.values.len(), Vec::new);
        for ((ints, v), &len) in self.ints.iter_mut().zip(&plan.values).zip(lens) {
            let want = if v.fact.dtype == DType::F32 { 0 } else { len };
            ints.resize(want, 0);
        }
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
}

impl StepState {
    pub fn for_op(op: &Op) -> Self {
        match op {
            Op::Conv2d { .. } => StepState::Conv(Box::default()),
            Op::Rnn { .. } | Op::EmbeddedRnn { .. } => StepState::Rnn(Vec::new()),
            _ => StepState::None,
        }
    }
}

fn plan_err(step: &Step, what: &str) -> RunError {
    RunError::Plan(format!("step `{}`: {what}", step.name))
}

/// What a step reads: value facts and concrete shapes.
struct Ctx<'a> {
    step: &'a Step,
    plan: &'a ExecutionPlan,
    layout: &'a Layout,
    weights: &'a Weights,
}

impl<'a> Ctx<'a> {
    fn shape(&self, v: u32) -> Result<&'a [usize], RunError> {
        self.layout
            .shapes
            .get(v as usize)
            .map(Vec::as_slice)
            .ok_or_else(|| plan_err(self.step, "value without a shape"))
    }

    fn len(&self, v: u32) -> Result<usize, RunError> {
        self.layout
            .lens
            .get(v as usize)
            .copied()
            .ok_or_else(|| plan_err(self.step, "value without a size"))
    }

    fn buffer(&self, v: u32) -> Result<usize, RunError> {
        self.plan
            .values
            .get(v as usize)
            .map(|p| p.buffer as usize)
            .ok_or_else(|| plan_err(self.step, "value without a buffer"))
    }

    fn dtype(&self, v: u32) -> Result<DType, RunError> {
        self.plan
            .values
            .get(v as usize)
            .map(|p| p.fact.dtype)
            .ok_or_else(|| plan_err(self.step, "unknown value"))
    }

    fn input(&self, i: usize) -> Result<u32, RunError> {
        self.step
            .inputs
            .get(i)
            .copied()
            .ok_or_else(|| plan_err(self.step, "missing input"))
    }

    /// The data of f32 value `v` from a buffer other than the output's.
    fn read<'b>(&self, buffers: &'b [Vec<f32>], v: u32) -> Result<&'b [f32], RunError> {
        let len = self.len(v)?;
        buffers
            .get(self.buffer(v)?)
            .and_then(|b| b.get(..len))
            .ok_or_else(|| plan_err(self.step, "an input shares the output buffer"))
    }

    fn param(&self, id: ParamId) -> Result<&'a ndarray::ArrayD<f32>, RunError> {
        self.weights
            .get(id)
            .ok_or_else(|| plan_err(self.step, "missing parameter"))
    }

    fn vector(&self, id: ParamId) -> Result<&'a [f32], RunError> {
        self.param(id)?
            .as_slice()
            .ok_or_else(|| plan_err(self.step, "parameter not contiguous"))
    }

    fn matrix(&self, id: ParamId) -> Result<ArrayView2<'a, f32>, RunError> {
        self.param(id)?
            .view()
            .into_dimensionality()
            .map_err(|_| plan_err(self.step, "parameter is not a matrix"))
    }

    fn kernel<T>(&self, r: Result<T, KernelError>) -> Result<T, RunError> {
        r.map_err(|e| RunError::kernel(&self.step.name, e))
    }
}

fn view<'b>(
    data: &'b [f32],
    shape: &[usize],
    ctx: &Ctx<'_>,
) -> Result<ArrayViewD<'b, f32>, RunError> {
    ArrayViewD::from_shape(IxDyn(shape), data).map_err(|e| plan_err(ctx.step, &e.to_string()))
}

fn view_mut<'b>(
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
        run_f32_step(&ctx, memory, out_b, dst, state)
    })
}

/// Lends buffer `out_b`'s first `out_len` values to `write` as the output of `step`, while
/// `write` still reads the other buffers through `memory`; the buffer goes back afterwards,
/// whatever `write` returned.
fn with_output_buffer(
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

/// Runs a fused conv2d step and the pool step after it (`fuse-conv-pool`): the conv output
/// exists only as per-thread tiles; the pool's output buffer receives the result.
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
    let Op::Conv2d {
        window,
        kernel,
        bias,
        activation,
        ..
    } = &conv.op
    else {
        return Err(plan_err(conv, "a fused step that is not a conv2d"));
    };
    let (kind, pool_window) = match &pool.op {
        Op::MaxPool2d { window } => (pool::PoolKind::Max, window),
        Op::AvgPool2d { window } => (pool::PoolKind::Avg, window),
        _ => return Err(plan_err(pool, "a fused step that is not a pool")),
    };
    let pool_ctx = Ctx { step: pool, ..ctx };
    let params = pool_params(kind, pool_window, &pool_ctx)?;
    let StepState::Conv(conv_state) = state else {
        return Err(plan_err(conv, "conv step without workspace"));
    };
    let x = ctx.input(0)?;
    let k = ctx.param(*kernel)?;
    let b = bias.map(|b| ctx.vector(b)).transpose()?;
    let shapes = super::conv::ConvPoolShapes {
        x: dims4(ctx.shape(x)?, &ctx)?,
        kernel: dims4(k.shape(), &ctx)?,
        conv_out: dims4(ctx.shape(conv.output)?, &ctx)?,
        pool_out: dims4(ctx.shape(pool.output)?, &ctx)?,
    };
    let ks = k
        .as_slice()
        .ok_or_else(|| plan_err(conv, "kernel not contiguous"))?;
    let out_b = pool_ctx.buffer(pool.output)?;
    let out_len = pool_ctx.len(pool.output)?;
    with_output_buffer(memory, pool, out_b, out_len, |memory, dst| {
        let xs = ctx.read(&memory.buffers, x)?;
        conv_state
            .run_pooled(xs, &shapes, ks, b, *activation, window, &params, dst)
            .map_err(|e| RunError::kernel(&conv.name, e))
    })
}

/// Whether input 0 already sits in the output buffer (a view or an in-place step).
fn shares_output(ctx: &Ctx<'_>, out_b: usize) -> Result<bool, RunError> {
    Ok(ctx.buffer(ctx.input(0)?)? == out_b)
}

/// Makes `dst` hold input 0: nothing to do when it shares the buffer, else a copy.
fn copy_first(
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

fn last_dim(ctx: &Ctx<'_>) -> Result<usize, RunError> {
    Ok(ctx.shape(ctx.step.output)?.last().copied().unwrap_or(1))
}

fn pool_params(
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

fn dims4(s: &[usize], ctx: &Ctx<'_>) -> Result<[usize; 4], RunError> {
    <[usize; 4]>::try_from(s).map_err(|_| plan_err(ctx.step, "expected a rank-4 value"))
}

fn run_f32_step(
    ctx: &Ctx<'_>,
    memory: &Memory,
    out_b: usize,
    dst: &mut [f32],
    state: &mut StepState,
) -> Result<(), RunError> {
    let step = ctx.step;
    let out_shape = ctx.shape(step.output)?;
    match &step.op {
        Op::Conv2d {
            window,
            kernel,
            bias,
            activation,
            ..
        } => {
            let x = ctx.input(0)?;
            let xs = ctx.read(&memory.buffers, x)?;
            let StepState::Conv(conv) = state else {
                return Err(plan_err(step, "conv step without workspace"));
            };
            let k = ctx.param(*kernel)?;
            let b = bias.map(|b| ctx.vector(b)).transpose()?;
            let kd = dims4(k.shape(), ctx)?;
            let ks = k
                .as_slice()
                .ok_or_else(|| plan_err(step, "kernel not contiguous"))?;
            conv.run(
                xs,
                dims4(ctx.shape(x)?, ctx)?,
                ks,
                kd,
                b,
                *activation,
                window,
                dst,
            )
            .map_err(|e| RunError::kernel(&step.name, e))
        }
        Op::Dense {
            kernel,
            bias,
            activation,
            units,
        } => {
            let x = ctx.input(0)?;
            let xv = view(ctx.read(&memory.buffers, x)?, ctx.shape(x)?, ctx)?;
            let k = ctx.matrix(*kernel)?;
            let b = bias.map(|b| ctx.vector(b)).transpose()?;
            ctx.kernel(dense::dense_forward(
                xv,
                k,
                None,
                view_mut(dst, out_shape, ctx)?,
            ))?;
            bias_activation(dst, b, *activation, *units);
            Ok(())
        }
        Op::MaxPool2d { window } | Op::AvgPool2d { window } => {
            let kind = if matches!(step.op, Op::MaxPool2d { .. }) {
                pool::PoolKind::Max
            } else {
                pool::PoolKind::Avg
            };
            let p = pool_params(kind, window, ctx)?;
            let x = ctx.input(0)?;
            let xv =
                ArrayView4::from_shape(dims4(ctx.shape(x)?, ctx)?, ctx.read(&memory.buffers, x)?)
                    .map_err(|e| plan_err(step, &e.to_string()))?;
            let ov = ArrayViewMut4::from_shape(dims4(out_shape, ctx)?, dst)
                .map_err(|e| plan_err(step, &e.to_string()))?;
            ctx.kernel(pool::pool2d_forward(xv, &p, ov))
        }
        Op::GlobalAvgPool2d | Op::GlobalMaxPool2d => {
            let kind = if matches!(step.op, Op::GlobalMaxPool2d) {
                pool::PoolKind::Max
            } else {
                pool::PoolKind::Avg
            };
            let x = ctx.input(0)?;
            let xv =
                ArrayView4::from_shape(dims4(ctx.shape(x)?, ctx)?, ctx.read(&memory.buffers, x)?)
                    .map_err(|e| plan_err(step, &e.to_string()))?;
            let ov = view_mut(dst, out_shape, ctx)?
                .into_dimensionality()
                .map_err(|e| plan_err(step, &e.to_string()))?;
            ctx.kernel(pool::global_pool_forward(xv, kind, ov))
        }
        Op::Flatten | Op::Reshape { .. } | Op::Dropout { .. } => {
            copy_first(ctx, memory, out_b, dst)
        }
        Op::Activation(a) => {
            copy_first(ctx, memory, out_b, dst)?;
            activation_in_place(*a, dst, last_dim(ctx)?);
            Ok(())
        }
        Op::Affine { scale, shift } => {
            copy_first(ctx, memory, out_b, dst)?;
            affine_in_place(dst, scale, shift);
            Ok(())
        }
        Op::BatchNorm {
            gamma,
            beta,
            mean,
            variance,
            epsilon,
            ..
        } => {
            copy_first(ctx, memory, out_b, dst)?;
            let c = last_dim(ctx)?;
            let (g, b, m, v) = (
                ctx.vector(*gamma)?,
                ctx.vector(*beta)?,
                ctx.vector(*mean)?,
                ctx.vector(*variance)?,
            );
            if [g.len(), b.len(), m.len(), v.len()] != [c; 4] {
                return Err(plan_err(
                    step,
                    "batch norm parameters do not match the channels",
                ));
            }
            batch_norm_in_place(dst, g, b, m, v, *epsilon);
            Ok(())
        }
        Op::LayerNorm {
            gamma,
            beta,
            epsilon,
        } => {
            let x = ctx.input(0)?;
            let xv = view(ctx.read(&memory.buffers, x)?, ctx.shape(x)?, ctx)?;
            let g = ArrayView1::from(ctx.vector(*gamma)?);
            let b = ArrayView1::from(ctx.vector(*beta)?);
            ctx.kernel(layer_norm::layer_norm_forward(
                xv,
                g,
                b,
                *epsilon,
                view_mut(dst, out_shape, ctx)?,
            ))
        }
        Op::Embedding { table } => {
            let x = ctx.input(0)?;
            let ids = memory
                .ints
                .get(x as usize)
                .ok_or_else(|| plan_err(step, "ids missing"))?;
            let ids = ArrayViewD::from_shape(IxDyn(ctx.shape(x)?), ids.as_slice())
                .map_err(|e| plan_err(step, &e.to_string()))?;
            let t = ctx.matrix(*table)?;
            ctx.kernel(embedding::embedding_forward(
                ids,
                t,
                view_mut(dst, out_shape, ctx)?,
            ))
        }
        Op::Rnn {
            cell,
            return_sequences,
            kernel,
            recurrent,
            bias,
            ..
        } => {
            let x = ctx.input(0)?;
            let StepState::Rnn(caches) = state else {
                return Err(plan_err(step, "recurrent step without cache"));
            };
            let input = RnnInput::Features {
                xs: ctx.read(&memory.buffers, x)?,
                params: rnn::RnnParams {
                    kernel: ctx.matrix(*kernel)?,
                    recurrent: ctx.matrix(*recurrent)?,
                    bias: ctx.param(*bias)?.view(),
                },
            };
            let layer = RnnLayer {
                cell: kernel_cell(*cell),
                return_sequences: *return_sequences,
                in_shape: ctx.shape(x)?,
                out_shape,
            };
            rnn_sliced(ctx, &layer, &input, caches, dst)
        }
        Op::EmbeddedRnn {
            cell,
            return_sequences,
            projection,
            recurrent,
            bias,
            ..
        } => {
            let x = ctx.input(0)?;
            let StepState::Rnn(caches) = state else {
                return Err(plan_err(step, "recurrent step without cache"));
            };
            let input = RnnInput::Tokens {
                ids: memory
                    .ints
                    .get(x as usize)
                    .ok_or_else(|| plan_err(step, "ids missing"))?,
                params: rnn::RnnTokenParams {
                    projection: ctx.matrix(*projection)?,
                    recurrent: ctx.matrix(*recurrent)?,
                    bias: ctx.param(*bias)?.view(),
                },
            };
            let layer = RnnLayer {
                cell: kernel_cell(*cell),
                return_sequences: *return_sequences,
                in_shape: ctx.shape(x)?,
                out_shape,
            };
            rnn_sliced(ctx, &layer, &input, caches, dst).map_err(|e| match e {
                // A bad token is the folded embedding's error: name that layer, as the
                // unfolded plan does (parameters are named `LAYER.PARAM`).
                RunError::TokenOutOfRange {
                    id,
                    position,
                    vocab,
                    ..
                } => RunError::TokenOutOfRange {
                    step: folded_embedding(ctx.plan, *projection)
                        .unwrap_or_else(|| step.name.clone()),
                    id,
                    position,
                    vocab,
                },
                e => e,
            })
        }
        Op::Add => {
            let first = ctx.input(0)?;
            copy_first(ctx, memory, out_b, dst)?;
            let in_out = ctx.buffer(first)? == out_b;
            // `add(x, x, ..)` in place over x: the copies of x still to add are in dst itself,
            // so they are added first, as a multiple (exact for two, within an ulp beyond).
            let again = step.inputs.iter().skip(1).filter(|&&v| v == first).count();
            if in_out && again > 0 {
                let times = (again + 1) as f32;
                for d in dst.iter_mut() {
                    *d *= times;
                }
            }
            for &v in step.inputs.iter().skip(1) {
                if !(in_out && v == first) {
                    add_in_place(dst, ctx.read(&memory.buffers, v)?);
                }
            }
            Ok(())
        }
        Op::Concat { axis } => {
            let rank = out_shape.len() as i64;
            let ax = if *axis < 0 { rank + axis } else { *axis };
            let ax = usize::try_from(ax).map_err(|_| plan_err(step, "bad concat axis"))?;
            let inputs = step
                .inputs
                .iter()
                .map(|&v| view(ctx.read(&memory.buffers, v)?, ctx.shape(v)?, ctx))
                .collect::<Result<Vec<_>, _>>()?;
            ctx.kernel(merge::concat_forward(
                &inputs,
                ax,
                view_mut(dst, out_shape, ctx)?,
            ))
        }
        Op::Cast { .. } => copy_first(ctx, memory, out_b, dst),
    }
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

fn kernel_cell(cell: RnnCell) -> rnn::RnnCell {
    match cell {
        RnnCell::SimpleRnn => rnn::RnnCell::SimpleRnn,
        RnnCell::Lstm => rnn::RnnCell::Lstm,
        RnnCell::Gru => rnn::RnnCell::Gru,
    }
}

/// A recurrent step's attributes and concrete shapes.
struct RnnLayer<'a> {
    cell: rnn::RnnCell,
    return_sequences: bool,
    /// `[N, T, F]` features or `[N, T]` token ids.
    in_shape: &'a [usize],
    out_shape: &'a [usize],
}

/// The layer of the embedding table a projection was derived from
/// (`fold-embedding-projection`).
fn folded_embedding(plan: &ExecutionPlan, projection: ParamId) -> Option<String> {
    let ParamSource::Derived(Recipe::EmbeddingProjection { table, .. }) =
        &plan.params.get(projection.index())?.source
    else {
        return None;
    };
    let name = &plan.params.get(table.index())?.name;
    Some(
        name.rsplit_once('.')
            .map_or(name.as_str(), |(layer, _)| layer)
            .to_string(),
    )
}

/// What a recurrent step reads: features (`Op::Rnn`) or token ids (`Op::EmbeddedRnn`), with
/// the weights of that form.
enum RnnInput<'a> {
    Features {
        xs: &'a [f32],
        params: rnn::RnnParams<'a>,
    },
    Tokens {
        ids: &'a [i64],
        params: rnn::RnnTokenParams<'a>,
    },
}

/// A recurrent layer over slices of the batch in parallel (one cache per slice). Samples are
/// independent and each GEMM row is computed alone, so the slicing does not change results.
fn rnn_sliced(
    ctx: &Ctx<'_>,
    layer: &RnnLayer<'_>,
    input: &RnnInput<'_>,
    caches: &mut Vec<rnn::RnnCache>,
    dst: &mut [f32],
) -> Result<(), RunError> {
    let (n, t, f) = match (input, layer.in_shape) {
        (RnnInput::Features { .. }, &[n, t, f]) => (n, t, f),
        (RnnInput::Tokens { .. }, &[n, t]) => (n, t, 1),
        _ => {
            return Err(plan_err(
                ctx.step,
                "recurrent input is not [N, T, F] or [N, T]",
            ))
        }
    };
    let out_sample: usize = layer.out_shape.iter().skip(1).product();
    let ranges = crate::runtime::kernels::batch_ranges(n, rayon::current_num_threads());
    caches.resize_with(ranges.len(), rnn::RnnCache::default);
    let mut jobs = Vec::with_capacity(ranges.len());
    let mut rest = dst;
    for (&(a, b), cache) in ranges.iter().zip(caches.iter_mut()) {
        let (mine, later) = std::mem::take(&mut rest).split_at_mut((b - a) * out_sample);
        rest = later;
        jobs.push((a, b, mine, cache));
    }
    let short = || plan_err(ctx.step, "recurrent input too short");
    let run = |(a, b, out, cache): (usize, usize, &mut [f32], &mut rnn::RnnCache)| {
        let count = b - a;
        let mut shape = layer.out_shape.to_vec();
        if let Some(first) = shape.first_mut() {
            *first = count;
        }
        let ov = view_mut(out, &shape, ctx)?;
        let (cell, sequences) = (layer.cell, layer.return_sequences);
        match input {
            RnnInput::Features { xs, params } => {
                let x = xs.get(a * t * f..b * t * f).ok_or_else(short)?;
                let xv = ArrayView3::from_shape((count, t, f), x)
                    .map_err(|e| plan_err(ctx.step, &e.to_string()))?;
                let forward = || rnn::rnn_infer(cell, xv, params, sequences, cache, ov);
                ctx.kernel(crate::runtime::kernels::linalg::serial(forward))
            }
            RnnInput::Tokens { ids, params } => {
                let x = ids.get(a * t..b * t).ok_or_else(short)?;
                let xv = ArrayView2::from_shape((count, t), x)
                    .map_err(|e| plan_err(ctx.step, &e.to_string()))?;
                let forward = || rnn::rnn_infer_tokens(cell, xv, params, sequences, cache, ov);
                // An id's position counts from the start of the batch, as the embedding's does.
                let result =
                    crate::runtime::kernels::linalg::serial(forward).map_err(|e| match e {
                        KernelError::IdOutOfRange {
                            id,
                            position,
                            vocab,
                        } => KernelError::IdOutOfRange {
                            id,
                            position: position + a * t,
                            vocab,
                        },
                        e => e,
                    });
                ctx.kernel(result)
            }
        }
    };
    if jobs.len() == 1 {
        jobs.into_iter().try_for_each(run)
    } else {
        use rayon::prelude::*;
        jobs.into_par_iter().try_for_each(run)
    }
}
