//! The conv2d step: geometry from the plan's window, then the convolution with bias and the
//! fused activation applied to the output.
//!
//! Input: NHWC input data, a Keras `[kh, kw, in, out]` kernel, optional bias, the window.
//! Output: `[N, OH, OW, out]` written into the step's buffer. Scratch memory stays in the
//! step's [`ConvStep`] between calls.
//!
//! Fused with the pool after it ([`ConvStep::run_pooled`]), each thread computes its slice of
//! the batch one tile of [`crate::plan::fuse::tile_samples`] samples at a time: the conv (same
//! GEMM per row), bias and activation into the tile, then the pool from the tile into the output.
//! Only the conv output pixels the pool reads are computed (a floor-mode pool skips the last
//! row and column of an odd-sized input). Every number is computed as in the unfused steps, so
//! the results are bit-identical.
//!
//! The slices of the batch, one per thread, are the parts of one intra-op pool job
//! ([`crate::runtime::pool`]). A batch of fewer samples than threads (batch 1) makes one slice;
//! its product then splits its rows (output pixels) between the pool's threads when it is large
//! enough (`simd_gemm::PARALLEL_MIN_WORK`), or its columns when it has too few rows, which gives
//! the same bits again.

use crate::ir::{Activation, Op, Padding, Window};
use crate::plan::ExecutionPlan;
use crate::runtime::kernels::batch_ranges;
use crate::runtime::kernels::conv::{
    conv2d_forward_cropped, same_padding, Conv2dGeometry, Conv2dShape, ConvForward, ConvWorkspace,
    Padding2d,
};
use crate::runtime::kernels::pool::{pool2d_forward, Pool2dParams};
use crate::runtime::kernels::{KernelError, KernelResult};
use crate::runtime::pool;

use super::elementwise::bias_activation;

/// A conv step's reusable scratch: one workspace per batch slice (one slice per thread), and
/// for a fused conv + pool, one conv-output tile per slice.
#[derive(Debug, Default)]
pub struct ConvStep {
    slices: Vec<ConvWorkspace>,
    tiles: Vec<Vec<f32>>,
}

/// The shapes of a fused conv + pool: input, kernel, conv output (never stored whole), pool
/// output.
#[derive(Clone, Copy, Debug)]
pub struct ConvPoolShapes {
    pub x: [usize; 4],
    pub kernel: [usize; 4],
    pub conv_out: [usize; 4],
    pub pool_out: [usize; 4],
}

/// How a conv step's batch maps onto scratch workspaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScratchUse {
    /// The interpreter: one slice of the batch per thread, each with its own patch matrix.
    Inference { threads: usize },
    /// The trainer: one workspace for the whole batch, holding the patches and their gradient.
    Training,
}

/// The f32 elements of scratch the conv steps of `plan` keep once they have run, with value
/// shapes from `shape_of` (`None` for a value whose size is not known yet: it counts nothing).
/// `None` when the total overflows. A step whose sizes do not make a convolution counts nothing
/// either: its kernel refuses it before allocating. Callers add this to their memory budget.
pub fn conv_scratch_len(
    plan: &ExecutionPlan,
    shape_of: impl Fn(u32) -> Option<Vec<usize>>,
    how: ScratchUse,
) -> Option<u64> {
    plan.steps.iter().try_fold(0u64, |total, step| {
        // A fused conv's tile and patches are the plan's `scratch_bytes_per_thread`.
        let (Op::Conv2d { window, kernel, .. } | Op::Conv1d { window, kernel, .. }, false) =
            (&step.op, step.fused_with_next)
        else {
            return Some(total);
        };
        // A conv1d's `[N, T, C]` input and `[k, in, out]` kernel run as `[N, 1, T, C]` and
        // `[1, k, in, out]`.
        let image = |mut s: Vec<usize>, axis: usize| {
            if s.len() == 3 {
                s.insert(axis, 1);
            }
            <[usize; 4]>::try_from(s.as_slice()).ok()
        };
        let x = step.inputs.first().and_then(|&v| shape_of(v));
        let x = x.and_then(|x| image(x, 1));
        let k = plan.params.get(kernel.index());
        let k = k.and_then(|p| image(p.shape.clone(), 0));
        let (Some(x), Some(k)) = (x, k) else {
            return Some(total);
        };
        let len = match how {
            ScratchUse::Inference { threads } => step_scratch(window, x, k, threads, 1),
            ScratchUse::Training => step_scratch(window, x, k, 1, 2),
        };
        match len {
            Ok(Some(len)) => total.checked_add(len),
            Ok(None) => None,
            Err(_) => Some(total),
        }
    })
}

/// One conv step's scratch: `copies` patch matrices per slice of the batch, `slices` slices at
/// most (split as [`ConvStep::run`] splits it); `Ok(None)` on overflow.
fn step_scratch(
    window: &Window,
    x_dims: [usize; 4],
    k_dims: [usize; 4],
    slices: usize,
    copies: u64,
) -> KernelResult<Option<u64>> {
    let [n, h, w, c] = x_dims;
    let geom = geometry(window, h, w)?;
    let mut total = Some(0u64);
    for (a, b) in batch_ranges(n, slices) {
        let s = Conv2dShape::new([b - a, h, w, c], k_dims, &geom)?;
        total = total.and_then(|t| t.checked_add((s.workspace_len() as u64).checked_mul(copies)?));
    }
    Ok(total)
}

/// The kernel geometry of `window` over an `h × w` input.
pub fn geometry(window: &Window, h: usize, w: usize) -> KernelResult<Conv2dGeometry> {
    let padding = match window.padding {
        Padding::Valid => Padding2d::default(),
        Padding::Explicit([top, bottom, left, right]) => Padding2d {
            top,
            bottom,
            left,
            right,
        },
        Padding::Same => {
            let (top, bottom) =
                same_padding(h, window.size[0], window.strides[0], window.dilation[0])?;
            let (left, right) =
                same_padding(w, window.size[1], window.strides[1], window.dilation[1])?;
            Padding2d {
                top,
                bottom,
                left,
                right,
            }
        }
    };
    Ok(Conv2dGeometry {
        stride: (window.strides[0], window.strides[1]),
        dilation: (window.dilation[0], window.dilation[1]),
        padding,
    })
}

/// The convolution, its bias and its activation, into `out` (the whole output, or its top-left
/// rows and columns: see [`Conv2dShape::cropped`]): bias and relu inside the
/// convolution's kernel, other activations in a pass after it. With `split`, the product's
/// rows (output pixels) are split between the pool's threads when it is large enough (a batch
/// too small to give each thread a slice of its own); otherwise it runs on this thread.
#[allow(clippy::needless_pass_by_value)] // views are passed by value, like ndarray's own API
#[allow(clippy::too_many_arguments)]
fn conv_bias_activation(
    x: ndarray::ArrayView4<'_, f32>,
    kernel: ndarray::ArrayView4<'_, f32>,
    bias: Option<&[f32]>,
    activation: Activation,
    geom: &Conv2dGeometry,
    ws: &mut ConvWorkspace,
    mut out: ndarray::ArrayViewMut4<'_, f32>,
    split: bool,
) -> KernelResult<()> {
    let relu = activation == Activation::Relu;
    let opts = ConvForward {
        relu,
        parallel: split,
    };
    let bias = bias.map(ndarray::ArrayView1::from);
    // `out` may be the top-left part of the output (a fused pool reads no more).
    let (_, rows, cols, _) = out.dim();
    conv2d_forward_cropped(
        x,
        kernel,
        bias,
        geom,
        (rows, cols),
        ws,
        out.view_mut(),
        opts,
    )?;
    if !relu && activation != Activation::Linear {
        let channels = out.dim().3;
        let data = out.as_slice_mut().ok_or(KernelError::Layout {
            op: "conv2d",
            tensor: "out",
        })?;
        bias_activation(data, None, activation, channels);
    }
    Ok(())
}

fn shape_err(detail: String) -> KernelError {
    KernelError::Shape {
        op: "conv2d",
        detail,
    }
}

impl ConvStep {
    /// Runs the convolution of `x` (`x_dims`) with `kernel` (`k_dims`) into `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        x: &[f32],
        x_dims: [usize; 4],
        kernel: &[f32],
        k_dims: [usize; 4],
        bias: Option<&[f32]>,
        activation: Activation,
        window: &Window,
        out: &mut [f32],
    ) -> KernelResult<()> {
        let geom = geometry(window, x_dims[1], x_dims[2])?;
        let s = Conv2dShape::new(x_dims, k_dims, &geom)?;
        let kv = ndarray::ArrayView4::from_shape(k_dims, kernel)
            .map_err(|e| shape_err(e.to_string()))?;
        // Samples are independent: each thread convolves its own slice of the batch with its
        // own workspace. A sample's output does not depend on the slicing (GEMM rows are
        // computed independently), so results are identical for every thread count.
        let ranges = batch_ranges(s.n, pool::threads());
        self.slices
            .resize_with(ranges.len(), ConvWorkspace::default);
        let in_sample = x_dims[1] * x_dims[2] * x_dims[3];
        let out_sample = s.oh * s.ow * s.o;
        let mut jobs = Vec::with_capacity(ranges.len());
        let mut rest_out = out
            .get_mut(..s.n * out_sample)
            .ok_or_else(|| shape_err("output shorter than its shape".into()))?;
        for (&(a, b), ws) in ranges.iter().zip(self.slices.iter_mut()) {
            let (mine, later) = rest_out.split_at_mut((b - a) * out_sample);
            rest_out = later;
            let xs = x
                .get(a * in_sample..b * in_sample)
                .ok_or_else(|| shape_err("input shorter than its shape".into()))?;
            jobs.push((b - a, xs, mine, ws));
        }
        // One slice for all threads (a batch smaller than the pool): the slice's product splits
        // its rows instead, with the same bits (each element is one fixed chain).
        let split = jobs.len() == 1 && pool::threads() > 1;
        let run = |(count, xs, out, ws): (usize, &[f32], &mut [f32], &mut ConvWorkspace)| {
            let xv = ndarray::ArrayView4::from_shape([count, x_dims[1], x_dims[2], x_dims[3]], xs)
                .map_err(|e| shape_err(e.to_string()))?;
            let ov = ndarray::ArrayViewMut4::from_shape([count, s.oh, s.ow, s.o], &mut *out)
                .map_err(|e| shape_err(e.to_string()))?;
            conv_bias_activation(xv, kv, bias, activation, &geom, ws, ov, split)
        };
        pool::try_run_each(jobs, run)
    }

    /// Runs the convolution of `x` (bias, activation) and then `pool` over it into `out` (the
    /// pool's output), a tile of samples at a time so the conv output never exists whole.
    #[allow(clippy::too_many_arguments)]
    pub fn run_pooled(
        &mut self,
        x: &[f32],
        shapes: &ConvPoolShapes,
        kernel: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        window: &Window,
        pool: &Pool2dParams,
        out: &mut [f32],
    ) -> KernelResult<()> {
        let geom = geometry(window, shapes.x[1], shapes.x[2])?;
        let s = Conv2dShape::new(shapes.x, shapes.kernel, &geom)?;
        if s.output() != shapes.conv_out {
            return Err(shape_err(format!(
                "conv output {:?} is not the plan's {:?}",
                s.output(),
                shapes.conv_out
            )));
        }
        let kv = ndarray::ArrayView4::from_shape(shapes.kernel, kernel)
            .map_err(|e| shape_err(e.to_string()))?;
        let [_, h, w, c] = shapes.x;
        let [_, ph, pw, pc] = shapes.pool_out;
        // Only the conv output the pool reads is computed: a floor-mode pool never reads the
        // rows and columns past its last window (the seed CNN's 11 × 11 and 3 × 3 outputs
        // under 2 × 2 pools: 10 × 10 and 2 × 2).
        let (rows, cols) = pool.reach(s.oh, s.ow)?;
        let in_sample = h * w * c;
        let conv_sample = rows * cols * s.o;
        let out_sample = ph * pw * pc;
        let tile = crate::plan::fuse::tile_samples(s.oh * s.ow);
        let ranges = batch_ranges(s.n, pool::threads());
        self.slices
            .resize_with(ranges.len(), ConvWorkspace::default);
        self.tiles.resize_with(ranges.len(), Vec::new);
        let mut jobs = Vec::with_capacity(ranges.len());
        let mut rest_out = out
            .get_mut(..s.n * out_sample)
            .ok_or_else(|| shape_err("output shorter than its shape".into()))?;
        for ((&(a, b), ws), scratch) in ranges
            .iter()
            .zip(self.slices.iter_mut())
            .zip(self.tiles.iter_mut())
        {
            let (mine, later) = rest_out.split_at_mut((b - a) * out_sample);
            rest_out = later;
            let xs = x
                .get(a * in_sample..b * in_sample)
                .ok_or_else(|| shape_err("input shorter than its shape".into()))?;
            jobs.push((b - a, xs, mine, ws, scratch));
        }
        let split = jobs.len() == 1 && pool::threads() > 1;
        let run = |(count, xs, out, ws, scratch): (
            usize,
            &[f32],
            &mut [f32],
            &mut ConvWorkspace,
            &mut Vec<f32>,
        )| {
            scratch.resize(tile.min(count) * conv_sample, 0.0);
            let mut done = 0;
            while done < count {
                let n = tile.min(count - done);
                let xv = ndarray::ArrayView4::from_shape(
                    [n, h, w, c],
                    xs.get(done * in_sample..(done + n) * in_sample)
                        .ok_or_else(|| shape_err("input tile out of range".into()))?,
                )
                .map_err(|e| shape_err(e.to_string()))?;
                let conv_tile = scratch
                    .get_mut(..n * conv_sample)
                    .ok_or_else(|| shape_err("tile larger than its scratch".into()))?;
                let cv = ndarray::ArrayViewMut4::from_shape([n, rows, cols, s.o], &mut *conv_tile)
                    .map_err(|e| shape_err(e.to_string()))?;
                conv_bias_activation(xv, kv, bias, activation, &geom, ws, cv, split)?;
                let pooled = out
                    .get_mut(done * out_sample..(done + n) * out_sample)
                    .ok_or_else(|| shape_err("output tile out of range".into()))?;
                let cv = ndarray::ArrayView4::from_shape([n, rows, cols, s.o], &*conv_tile)
                    .map_err(|e| shape_err(e.to_string()))?;
                let pv = ndarray::ArrayViewMut4::from_shape([n, ph, pw, pc], pooled)
                    .map_err(|e| shape_err(e.to_string()))?;
                pool2d_forward(cv, pool, pv)?;
                done += n;
            }
            Ok(())
        };
        pool::try_run_each(jobs, run)
    }
}
