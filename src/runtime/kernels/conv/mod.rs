//! 2-D convolution, channels-last (NHWC), Keras weight layout, forward and backward.
//!
//! Input `x: [N, H, W, C]`, kernel `[KH, KW, C, O]`, optional bias `[O]`, output
//! `[N, OH, OW, O]`. Padding is explicit ([`Padding2d`]); callers turn Keras `same` into pads
//! with [`same_padding`] and `valid` is all zeros.
//!
//! Forward on CPUs with AVX2 + FMA is one [`simd_gemm`] product that reads each output pixel's
//! receptive field straight from the input (through a table of per-tap offsets; a padded
//! convolution reads a zero-padded copy of a chunk of samples), so no patch matrix is built.
//! Elsewhere it is im2col + one GEMM per chunk of samples: the patch matrix has one row per
//! output pixel and `KH·KW·C` columns in kernel order, so the kernel tensor (row-major) already
//! is the `[KH·KW·C, O]` right-hand matrix and the GEMM result already is NHWC. Scratch memory
//! lives in a [`ConvWorkspace`] that is reused between calls: the steady state allocates nothing.
//!
//! Backward: `dbias = Σ dy`, `dkernel = colsᵀ · dy`, `dcols = dy · kernelᵀ`, then col2im
//! scatter-adds `dcols` into `dx`. All gradient outputs are overwritten, not accumulated. With
//! AVX2 + FMA, `dkernel` reads the receptive fields from the input as the forward pass does
//! (one product row per kernel tap), and a stride-1 convolution whose output is nearly as
//! large as its input gets `dx` as a direct convolution of the zero-padded `dy` with the
//! flipped kernel, with no `dcols` and no col2im.
//!
//! Training a convolution whose output a floor-mode pool reads only in part
//! ([`conv2d_forward_reached`], [`conv2d_backward_reached`]) computes and differentiates only
//! the top-left pixels the pool reaches (`Pool2dParams::reach`), as inference's fused conv +
//! pool does ([`conv2d_forward_cropped`]).
//!
//! Files: this module the geometry, validated shapes and workspace; `forward.rs` and
//! `backward.rs` the two directions; `im2col.rs` the receptive-field addressing both share.

use super::error::{checked_product, param_err, KernelError, KernelResult};
use crate::ops::window;

const OP: &str = "conv2d";

/// Rows of the patch matrix processed per GEMM: bounds the workspace and keeps it cache-warm.
const ROWS_PER_CHUNK_TARGET: usize = 1024;
/// Rows of the patch gradient matrix per chunk when only `dx` goes through it (see
/// `samples_per_dx_chunk`).
const DX_ROWS_PER_CHUNK_TARGET: usize = 256;

/// Explicit zero padding on each side of the spatial axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Padding2d {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

/// Stride, dilation and padding of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
    pub padding: Padding2d,
}

impl Default for Conv2dGeometry {
    fn default() -> Self {
        Self {
            stride: (1, 1),
            dilation: (1, 1),
            padding: Padding2d::default(),
        }
    }
}

/// TensorFlow's `SAME` padding for one axis: `(before, after)`, the odd pixel going after
/// ([`window::same_padding`] with this module's error).
pub fn same_padding(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> KernelResult<(usize, usize)> {
    window::same_padding(input, kernel, stride, dilation).map_err(|e| window_err("same_padding", e))
}

/// Output length of one axis: `floor((in + pads - dilated_kernel) / stride) + 1`
/// ([`window::padded_output_size`] with this module's error).
pub fn conv_output_size(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: (usize, usize),
) -> KernelResult<usize> {
    window::padded_output_size(input, kernel, stride, dilation, pad).map_err(|e| window_err(OP, e))
}

fn window_err(op: &'static str, e: window::WindowError) -> KernelError {
    match e {
        window::WindowError::Overflow => param_err(
            op,
            "kernel, stride and dilation must be positive, and sizes must not overflow",
        ),
        window::WindowError::TooLarge(t) => param_err(
            op,
            format!(
                "dilated kernel {} exceeds padded input {}",
                t.needed, t.input
            ),
        ),
    }
}

/// Every size of one convolution call, validated once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dShape {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub kh: usize,
    pub kw: usize,
    pub o: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Conv2dShape {
    /// Derives output sizes from the input and kernel shapes.
    pub fn new(x: [usize; 4], kernel: [usize; 4], geom: &Conv2dGeometry) -> KernelResult<Self> {
        let [n, h, w, c] = x;
        let [kh, kw, kc, o] = kernel;
        if kc != c {
            return Err(super::error::shape_err(
                OP,
                format!("kernel expects {kc} input channels, input has {c}"),
            ));
        }
        let p = geom.padding;
        let oh = conv_output_size(h, kh, geom.stride.0, geom.dilation.0, (p.top, p.bottom))?;
        let ow = conv_output_size(w, kw, geom.stride.1, geom.dilation.1, (p.left, p.right))?;
        checked_product(OP, &[n, h, w, c])?;
        checked_product(OP, &[n, oh, ow, kh, kw, c])?;
        checked_product(OP, &[n, oh, ow, o])?;
        Ok(Self {
            n,
            h,
            w,
            c,
            kh,
            kw,
            o,
            oh,
            ow,
        })
    }

    /// The same convolution computing only the top-left `rows × cols` output pixels of each
    /// sample (what a floor-mode pool after it reads): the input and its strides are unchanged,
    /// so every kept pixel is computed exactly as in the whole output. An error when the crop is
    /// larger than the output.
    pub fn cropped(self, rows: usize, cols: usize) -> KernelResult<Self> {
        if rows > self.oh || cols > self.ow {
            return Err(super::error::shape_err(
                OP,
                format!(
                    "crop {rows}x{cols} larger than the output {}x{}",
                    self.oh, self.ow
                ),
            ));
        }
        Ok(Self {
            oh: rows,
            ow: cols,
            ..self
        })
    }

    /// The output shape `[N, OH, OW, O]`.
    pub fn output(&self) -> [usize; 4] {
        [self.n, self.oh, self.ow, self.o]
    }

    /// The f32 elements of the patch matrix a call keeps in its [`ConvWorkspace`]: one chunk of
    /// samples' patches (the backward pass keeps as many again for their gradient). Cannot
    /// overflow: [`Conv2dShape::new`] checked `n × oh × ow × kh × kw × c`, and a chunk holds at
    /// most `n` samples. Callers add it to their memory budget before the first call.
    pub fn workspace_len(&self) -> usize {
        self.samples_per_chunk() * self.pixels_per_sample() * self.patch_len()
    }

    fn patch_len(&self) -> usize {
        self.kh * self.kw * self.c
    }

    fn pixels_per_sample(&self) -> usize {
        self.oh * self.ow
    }

    /// Samples per chunk of `dx` through `dcols` + col2im: a `dcols` chunk small enough to be
    /// read back from a core's L2 by the scatter right after the product wrote it.
    fn samples_per_dx_chunk(&self) -> usize {
        (DX_ROWS_PER_CHUNK_TARGET / self.pixels_per_sample().max(1)).clamp(1, self.n.max(1))
    }

    fn samples_per_chunk(&self) -> usize {
        (ROWS_PER_CHUNK_TARGET / self.pixels_per_sample().max(1)).clamp(1, self.n.max(1))
    }
}

/// Reusable scratch memory of a convolution (patch matrix and its gradient; for the direct
/// kernel, a zero-padded copy of the input and the per-tap offsets).
#[derive(Debug, Default, Clone)]
pub struct ConvWorkspace {
    cols: Vec<f32>,
    dcols: Vec<f32>,
    padded: Vec<f32>,
    k_offsets: Vec<usize>,
    origins: Vec<usize>,
    flipped: Vec<f32>,
    /// The kernel transposed (`[O, patch]`, row-major) for the sliced input gradient.
    kernel_t: Vec<f32>,
    /// The pixels of `dy` a pool read, gathered for [`conv2d_backward_reached`].
    dy_reached: Vec<f32>,
}

/// How [`conv2d_forward_with`] finishes and splits its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConvForward {
    /// Apply relu after the bias, inside the kernel (one pass less over the output).
    pub relu: bool,
    /// Split the work between the current rayon pool's threads (false when the caller already
    /// runs one slice of the batch per thread).
    pub parallel: bool,
}

impl ConvWorkspace {
    /// An empty workspace; it grows on first use and then stays.
    pub fn new() -> Self {
        Self::default()
    }
}

fn dims4(d: (usize, usize, usize, usize)) -> [usize; 4] {
    [d.0, d.1, d.2, d.3]
}

mod backward;
mod forward;
mod im2col;

pub use backward::{conv2d_backward, conv2d_backward_reached, Conv2dGrads};
pub use forward::{
    conv2d_forward, conv2d_forward_cropped, conv2d_forward_reached, conv2d_forward_with,
};
