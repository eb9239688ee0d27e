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

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut1, ArrayViewMut4};

use super::error::{checked_product, expect_shape, param_err, KernelError, KernelResult};
use super::linalg::{self, column_sums, ensure_len, flat, flat_mut, gemm, mat, mat_mut};
use super::simd_gemm;
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

/// The span of one kernel row that lands inside the input: kernel columns `kx_lo..kx_hi`
/// read input columns `ix_lo..ix_lo + (kx_hi - kx_lo)`. Only valid for column dilation 1, where
/// in-bounds kernel columns read consecutive input pixels (one contiguous run in NHWC).
#[derive(Clone, Copy)]
struct RowSpan {
    kx_lo: usize,
    kx_hi: usize,
    ix_lo: usize,
}

fn row_span(s: &Conv2dShape, geom: &Conv2dGeometry, ox: usize) -> RowSpan {
    let start = ox * geom.stride.1;
    let pad = geom.padding.left;
    let kx_lo = pad.saturating_sub(start).min(s.kw);
    let kx_hi = (s.w + pad).saturating_sub(start).min(s.kw).max(kx_lo);
    RowSpan {
        kx_lo,
        kx_hi,
        ix_lo: (start + kx_lo).saturating_sub(pad),
    }
}

/// The input row read by kernel row `ky` at output row `oy`, if inside the input.
fn input_row(s: &Conv2dShape, geom: &Conv2dGeometry, oy: usize, ky: usize) -> Option<usize> {
    (oy * geom.stride.0 + ky * geom.dilation.0)
        .checked_sub(geom.padding.top)
        .filter(|&iy| iy < s.h)
}

/// Copies the receptive fields of samples `n0..n0+count` into `cols` (one row per output pixel).
fn im2col(
    x: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    n0: usize,
    count: usize,
    cols: &mut [f32],
) {
    if geom.dilation.1 != 1 {
        im2col_dilated(x, s, geom, n0, count, cols);
        return;
    }
    let patch = s.patch_len();
    let kernel_row = s.kw * s.c;
    let mut rows = cols.chunks_exact_mut(patch);
    for n in n0..n0 + count {
        let sample = &x[n * s.h * s.w * s.c..(n + 1) * s.h * s.w * s.c];
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let Some(row) = rows.next() else { return };
                let span = row_span(s, geom, ox);
                for (ky, seg) in row.chunks_exact_mut(kernel_row).enumerate() {
                    let Some(iy) = input_row(s, geom, oy, ky) else {
                        seg.fill(0.0);
                        continue;
                    };
                    let (lo, hi) = (span.kx_lo * s.c, span.kx_hi * s.c);
                    if lo == hi {
                        // The whole kernel row lies in the padding (wider than its reach).
                        seg.fill(0.0);
                        continue;
                    }
                    let at = (iy * s.w + span.ix_lo) * s.c;
                    seg[..lo].fill(0.0);
                    seg[lo..hi].copy_from_slice(&sample[at..at + hi - lo]);
                    seg[hi..].fill(0.0);
                }
            }
        }
    }
}

/// [`im2col`] for column dilation above 1: one channel vector per kernel tap.
fn im2col_dilated(
    x: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    n0: usize,
    count: usize,
    cols: &mut [f32],
) {
    let patch = s.patch_len();
    let mut rows = cols.chunks_exact_mut(patch);
    for n in n0..n0 + count {
        let sample = &x[n * s.h * s.w * s.c..(n + 1) * s.h * s.w * s.c];
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let Some(row) = rows.next() else { return };
                let mut segments = row.chunks_exact_mut(s.c);
                for ky in 0..s.kh {
                    let iy = input_row(s, geom, oy, ky);
                    for kx in 0..s.kw {
                        let ix = (ox * geom.stride.1 + kx * geom.dilation.1)
                            .checked_sub(geom.padding.left);
                        let Some(seg) = segments.next() else { return };
                        match (iy, ix) {
                            (Some(iy), Some(ix)) if ix < s.w => {
                                let at = (iy * s.w + ix) * s.c;
                                seg.copy_from_slice(&sample[at..at + s.c]);
                            }
                            _ => seg.fill(0.0),
                        }
                    }
                }
            }
        }
    }
}

/// Scatter-adds patch-matrix gradients of samples `n0..n0+count` back into `dx`.
fn col2im(
    dcols: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    n0: usize,
    count: usize,
    dx: &mut [f32],
) {
    if geom.dilation.1 != 1 {
        col2im_dilated(dcols, s, geom, n0, count, dx);
        return;
    }
    let patch = s.patch_len();
    let kernel_row = s.kw * s.c;
    let mut rows = dcols.chunks_exact(patch);
    for n in n0..n0 + count {
        let sample = &mut dx[n * s.h * s.w * s.c..(n + 1) * s.h * s.w * s.c];
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let Some(row) = rows.next() else { return };
                let span = row_span(s, geom, ox);
                for (ky, seg) in row.chunks_exact(kernel_row).enumerate() {
                    let Some(iy) = input_row(s, geom, oy, ky) else {
                        continue;
                    };
                    let (lo, hi) = (span.kx_lo * s.c, span.kx_hi * s.c);
                    if lo == hi {
                        continue;
                    }
                    let at = (iy * s.w + span.ix_lo) * s.c;
                    for (d, &g) in sample[at..at + hi - lo].iter_mut().zip(&seg[lo..hi]) {
                        *d += g;
                    }
                }
            }
        }
    }
}

/// [`col2im`] for column dilation above 1: one channel vector per kernel tap.
fn col2im_dilated(
    dcols: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    n0: usize,
    count: usize,
    dx: &mut [f32],
) {
    let patch = s.patch_len();
    let mut rows = dcols.chunks_exact(patch);
    for n in n0..n0 + count {
        let sample = &mut dx[n * s.h * s.w * s.c..(n + 1) * s.h * s.w * s.c];
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let Some(row) = rows.next() else { return };
                let mut segments = row.chunks_exact(s.c);
                for ky in 0..s.kh {
                    let iy = input_row(s, geom, oy, ky);
                    for kx in 0..s.kw {
                        let ix = (ox * geom.stride.1 + kx * geom.dilation.1)
                            .checked_sub(geom.padding.left);
                        let Some(seg) = segments.next() else { return };
                        if let (Some(iy), Some(ix)) = (iy, ix) {
                            if ix < s.w {
                                let at = (iy * s.w + ix) * s.c;
                                for (d, &g) in sample[at..at + s.c].iter_mut().zip(seg) {
                                    *d += g;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn dims4(d: (usize, usize, usize, usize)) -> [usize; 4] {
    [d.0, d.1, d.2, d.3]
}

/// Forward convolution into `out: [N, OH, OW, O]`, split between the pool's threads.
pub fn conv2d_forward(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    geom: &Conv2dGeometry,
    ws: &mut ConvWorkspace,
    out: ArrayViewMut4<'_, f32>,
) -> KernelResult<()> {
    let opts = ConvForward {
        relu: false,
        parallel: true,
    };
    conv2d_forward_with(x, kernel, bias, geom, ws, out, opts)
}

/// Forward convolution into `out: [N, OH, OW, O]`, then bias and (if `opts.relu`) relu.
///
/// On CPUs with AVX2 and FMA the product runs in [`simd_gemm`] straight from the input (a
/// zero-padded copy when there is padding), with no patch matrix; elsewhere im2col + GEMM.
pub fn conv2d_forward_with(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    geom: &Conv2dGeometry,
    ws: &mut ConvWorkspace,
    mut out: ArrayViewMut4<'_, f32>,
    opts: ConvForward,
) -> KernelResult<()> {
    let s = Conv2dShape::new(dims4(x.dim()), dims4(kernel.dim()), geom)?;
    expect_shape(OP, "out", out.shape(), &s.output())?;
    if let Some(b) = &bias {
        expect_shape(OP, "bias", b.shape(), &[s.o])?;
    }
    let xs = flat(OP, "x", &x)?;
    let kflat = flat(OP, "kernel", &kernel)?;
    let ks = mat(OP, kflat, s.patch_len(), s.o)?;
    let out_flat = flat_mut(OP, "out", &mut out)?;
    let bias_flat = match &bias {
        Some(b) => Some(b.as_slice().ok_or(KernelError::Layout {
            op: OP,
            tensor: "bias",
        })?),
        None => None,
    };
    if simd_gemm::available() && direct(xs, &s, geom, kflat, bias_flat, ws, out_flat, opts) {
        return Ok(());
    }
    let per_sample = s.pixels_per_sample();
    let chunk = s.samples_per_chunk();
    let pointwise =
        s.kh == 1 && s.kw == 1 && geom.stride == (1, 1) && geom.padding == Padding2d::default();
    if !pointwise {
        ensure_len(&mut ws.cols, s.workspace_len());
    }
    let mut n0 = 0;
    while n0 < s.n {
        let count = chunk.min(s.n - n0);
        let rows = count * per_sample;
        let lhs = if pointwise {
            mat(OP, &xs[n0 * per_sample * s.c..], rows, s.c)?
        } else {
            im2col(xs, &s, geom, n0, count, &mut ws.cols);
            mat(OP, &ws.cols, rows, s.patch_len())?
        };
        let mut dst = mat_mut(OP, &mut out_flat[n0 * per_sample * s.o..], rows, s.o)?;
        gemm(OP, 1.0, &lhs, &ks, 0.0, &mut dst)?;
        n0 += count;
    }
    if s.o > 0 {
        for row in out_flat.chunks_exact_mut(s.o) {
            if let Some(b) = bias_flat {
                for (o, &bv) in row.iter_mut().zip(b) {
                    *o += bv;
                }
            }
            if opts.relu {
                for v in row.iter_mut() {
                    *v = v.max(0.0);
                }
            }
        }
    }
    Ok(())
}

/// The convolution as one [`simd_gemm`] product per chunk of samples, reading the receptive
/// fields from the input (or from its zero-padded copy, made a chunk at a time in the
/// workspace so that the copy never exceeds the patch matrix it replaces). `false` (nothing
/// written) when the kernel declines.
#[allow(clippy::too_many_arguments)]
fn direct(
    xs: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    kernel: &[f32],
    bias: Option<&[f32]>,
    ws: &mut ConvWorkspace,
    out: &mut [f32],
    opts: ConvForward,
) -> bool {
    let p = geom.padding;
    let padded = p != Padding2d::default();
    let (Some(hp), Some(wp)) = (
        s.h.checked_add(p.top).and_then(|v| v.checked_add(p.bottom)),
        s.w.checked_add(p.left).and_then(|v| v.checked_add(p.right)),
    ) else {
        return false;
    };
    let Some(sample_len) = hp.checked_mul(wp).and_then(|v| v.checked_mul(s.c)) else {
        return false;
    };
    let chunk = if padded {
        let budget = s.workspace_len();
        if sample_len == 0 || sample_len > budget {
            return false;
        }
        (budget / sample_len).clamp(1, s.n.max(1))
    } else {
        s.n.max(1)
    };
    tap_offsets((s.kh, s.kw, s.c), geom.dilation, wp, &mut ws.k_offsets);
    let geometry = simd_gemm::ConvRows {
        pixels: s.pixels_per_sample(),
        ow: s.ow,
        sample_len,
        row_step: geom.stride.0 * wp * s.c,
        col_step: geom.stride.1 * s.c,
    };
    let epilogue = simd_gemm::Epilogue {
        bias,
        relu: opts.relu,
    };
    let in_sample = s.h * s.w * s.c;
    let out_sample = s.pixels_per_sample() * s.o;
    let mut n0 = 0;
    while n0 < s.n {
        let count = chunk.min(s.n - n0);
        let data: &[f32] = if padded {
            let dims = [s.h, s.w, s.c];
            pad_chunk(xs, dims, p, wp, sample_len, n0, count, &mut ws.padded);
            &ws.padded[..count * sample_len]
        } else {
            &xs[n0 * in_sample..]
        };
        let lhs = simd_gemm::Lhs::Conv {
            data,
            geometry,
            k_offsets: &ws.k_offsets,
        };
        let dst = &mut out[n0 * out_sample..(n0 + count) * out_sample];
        let rows = count * s.pixels_per_sample();
        let k = s.patch_len();
        if !simd_gemm::gemm(
            lhs,
            rows,
            k,
            kernel,
            s.o,
            s.o,
            dst,
            s.o,
            false,
            epilogue,
            opts.parallel,
        ) {
            return false;
        }
        n0 += count;
    }
    true
}

/// Gradient buffers written by [`conv2d_backward`] (each overwritten). `dx: None` skips the
/// input gradient (and its GEMM and col2im), e.g. for a first layer fed by data.
pub struct Conv2dGrads<'a> {
    pub dx: Option<ArrayViewMut4<'a, f32>>,
    pub dkernel: ArrayViewMut4<'a, f32>,
    pub dbias: Option<ArrayViewMut1<'a, f32>>,
}

/// Backward convolution: from `dy: [N, OH, OW, O]` to `dx`, `dkernel` and `dbias`.
pub fn conv2d_backward(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    geom: &Conv2dGeometry,
    ws: &mut ConvWorkspace,
    grads: Conv2dGrads<'_>,
) -> KernelResult<()> {
    let Conv2dGrads {
        dx,
        mut dkernel,
        dbias,
    } = grads;
    let s = Conv2dShape::new(dims4(x.dim()), dims4(kernel.dim()), geom)?;
    expect_shape(OP, "dy", dy.shape(), &s.output())?;
    if let Some(dx) = &dx {
        expect_shape(OP, "dx", dx.shape(), x.shape())?;
    }
    expect_shape(OP, "dkernel", dkernel.shape(), kernel.shape())?;
    let xs = flat(OP, "x", &x)?;
    let dys = flat(OP, "dy", &dy)?;
    let ks = mat(OP, flat(OP, "kernel", &kernel)?, s.patch_len(), s.o)?;
    let mut dx = dx;
    let mut dxs = match dx.as_mut() {
        Some(d) => Some(flat_mut(OP, "dx", d)?),
        None => None,
    };
    let mut dk = mat_mut(
        OP,
        flat_mut(OP, "dkernel", &mut dkernel)?,
        s.patch_len(),
        s.o,
    )?;
    if let Some(mut db) = dbias {
        expect_shape(OP, "dbias", db.shape(), &[s.o])?;
        column_sums(dys, s.o, flat_mut(OP, "dbias", &mut db)?);
    }
    let kflat = flat(OP, "kernel", &kernel)?;
    let own = simd_gemm::available();
    let dk_done = own && {
        let dk_flat = dk.as_slice_mut().ok_or(KernelError::Layout {
            op: OP,
            tensor: "dkernel",
        })?;
        weight_grad_direct(xs, dys, &s, geom, ws, dk_flat)
    };
    let dx_done = match dxs.as_deref_mut() {
        Some(d) if own => input_grad_direct(dys, &s, geom, kflat, ws, d)?,
        Some(_) => false,
        None => true,
    };
    if dk_done && dx_done {
        return Ok(());
    }
    // What is left for the patch matrix: im2col + GEMM for dkernel, dcols + col2im for dx.
    let mut dxs = if dx_done { None } else { dxs };
    let mut dk = if dk_done { None } else { Some(dk) };
    if let Some(d) = &mut dk {
        d.fill(0.0);
    }
    if let Some(d) = dxs.as_deref_mut() {
        d.fill(0.0);
    }
    let per_sample = s.pixels_per_sample();
    let chunk = if dk.is_none() {
        s.samples_per_dx_chunk()
    } else {
        s.samples_per_chunk()
    };
    if dk.is_some() {
        ensure_len(&mut ws.cols, s.workspace_len());
    }
    if dxs.is_some() {
        ensure_len(&mut ws.dcols, s.workspace_len());
    }
    let mut n0 = 0;
    while n0 < s.n {
        let count = chunk.min(s.n - n0);
        let rows = count * per_sample;
        let dyc = mat(OP, &dys[n0 * per_sample * s.o..], rows, s.o)?;
        if let Some(dk) = &mut dk {
            im2col(xs, &s, geom, n0, count, &mut ws.cols);
            let cols = mat(OP, &ws.cols, rows, s.patch_len())?;
            gemm(OP, 1.0, &cols.t(), &dyc, 1.0, dk)?;
        }
        if let Some(d) = dxs.as_deref_mut() {
            let mut dcols = mat_mut(OP, &mut ws.dcols, rows, s.patch_len())?;
            gemm(OP, 1.0, &dyc, &ks.t(), 0.0, &mut dcols)?;
            col2im(&ws.dcols, &s, geom, n0, count, d);
        }
        n0 += count;
    }
    Ok(())
}

/// The zero-padded copy of samples `n0..n0 + count` of the NHWC `xs` (`h × w × c` each) into
/// `dst`, `pad` around each sample (`hp × wp` pixels padded).
#[allow(clippy::too_many_arguments)]
fn pad_chunk(
    xs: &[f32],
    [h, w, c]: [usize; 3],
    p: Padding2d,
    wp: usize,
    sample_len: usize,
    n0: usize,
    count: usize,
    dst: &mut Vec<f32>,
) {
    let in_sample = h * w * c;
    ensure_len(dst, count * sample_len);
    let dst = &mut dst[..count * sample_len];
    dst.fill(0.0);
    for (i, sample) in dst.chunks_exact_mut(sample_len).enumerate() {
        let src = &xs[(n0 + i) * in_sample..(n0 + i + 1) * in_sample];
        for (y, row) in src.chunks_exact(w * c).enumerate() {
            let at = ((y + p.top) * wp + p.left) * c;
            sample[at..at + row.len()].copy_from_slice(row);
        }
    }
}

/// The offset of every kernel tap (`ky, kx, ci` in kernel order) from a receptive field's
/// origin, in an input `wp` pixels wide with `c` channels.
fn tap_offsets(
    (kh, kw, c): (usize, usize, usize),
    dilation: (usize, usize),
    wp: usize,
    out: &mut Vec<usize>,
) {
    out.clear();
    for ky in 0..kh {
        for kx in 0..kw {
            let tap = (ky * dilation.0 * wp + kx * dilation.1) * c;
            out.extend((0..c).map(|ci| tap + ci));
        }
    }
}

/// `dkernel = Σ receptive fieldsᵀ · dy` in [`simd_gemm`], reading the receptive fields from
/// the input (its zero-padded copy, a chunk of samples at a time) instead of a patch matrix:
/// one row of the product per kernel tap, one term of its sum per output pixel. `false`
/// (nothing meaningful written) when the kernel declines.
fn weight_grad_direct(
    xs: &[f32],
    dys: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    ws: &mut ConvWorkspace,
    dk: &mut [f32],
) -> bool {
    let p = geom.padding;
    let padded = p != Padding2d::default();
    let (hp, wp) = (s.h + p.top + p.bottom, s.w + p.left + p.right);
    let Some(sample_len) = hp.checked_mul(wp).and_then(|v| v.checked_mul(s.c)) else {
        return false;
    };
    let in_sample = s.h * s.w * s.c;
    let pixels = s.pixels_per_sample();
    let chunk = s.samples_per_chunk();
    if padded && chunk.saturating_mul(sample_len) > s.workspace_len().max(sample_len) {
        return false;
    }
    tap_offsets((s.kh, s.kw, s.c), geom.dilation, wp, &mut ws.k_offsets);
    let (row_step, col_step) = (geom.stride.0 * wp * s.c, geom.stride.1 * s.c);
    let mut n0 = 0;
    while n0 < s.n {
        let count = chunk.min(s.n - n0);
        ws.origins.clear();
        for i in 0..count {
            for oy in 0..s.oh {
                for ox in 0..s.ow {
                    ws.origins
                        .push(i * sample_len + oy * row_step + ox * col_step);
                }
            }
        }
        let data: &[f32] = if padded {
            let dims = [s.h, s.w, s.c];
            pad_chunk(xs, dims, p, wp, sample_len, n0, count, &mut ws.padded);
            &ws.padded[..count * sample_len]
        } else {
            &xs[n0 * in_sample..(n0 + count) * in_sample]
        };
        let lhs = simd_gemm::Lhs::Gather {
            data,
            row_offsets: &ws.k_offsets,
            k_offsets: &ws.origins,
        };
        let rows = count * pixels;
        let dy = &dys[n0 * pixels * s.o..(n0 + count) * pixels * s.o];
        let epilogue = simd_gemm::Epilogue::NONE;
        let taps = s.patch_len();
        if !simd_gemm::gemm(
            lhs,
            taps,
            rows,
            dy,
            s.o,
            s.o,
            dk,
            s.o,
            n0 > 0,
            epilogue,
            linalg::may_split(),
        ) {
            return false;
        }
        n0 += count;
    }
    true
}

/// `dx` for a stride-1 convolution as a direct convolution of `dy`, zero-padded by the dilated
/// kernel's reach less the forward padding, with the kernel flipped in space and its channel
/// axes swapped: no patch gradient matrix and no col2im scatter. `Ok(false)` (nothing
/// meaningful written) for strides above 1 or padding wider than the kernel's reach.
fn input_grad_direct(
    dys: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    kernel: &[f32],
    ws: &mut ConvWorkspace,
    dx: &mut [f32],
) -> KernelResult<bool> {
    let p = geom.padding;
    let reach_h = (s.kh - 1) * geom.dilation.0;
    let reach_w = (s.kw - 1) * geom.dilation.1;
    // The direct form also multiplies the zeros around `dy`: worth it only when that border
    // is small next to the image (a `same` convolution, or a large one); otherwise the patch
    // gradient matrix and col2im do fewer multiply-adds.
    let worth_it = (s.h * s.w).saturating_mul(4) <= (s.oh * s.ow).saturating_mul(5);
    let fits = worth_it
        && geom.stride == (1, 1)
        && p.top <= reach_h
        && p.bottom <= reach_h
        && p.left <= reach_w
        && p.right <= reach_w;
    if !fits {
        return Ok(false);
    }
    let back = Conv2dGeometry {
        stride: (1, 1),
        dilation: geom.dilation,
        padding: Padding2d {
            top: reach_h - p.top,
            bottom: reach_h - p.bottom,
            left: reach_w - p.left,
            right: reach_w - p.right,
        },
    };
    let bs = Conv2dShape::new([s.n, s.oh, s.ow, s.o], [s.kh, s.kw, s.o, s.c], &back)?;
    if bs.output() != [s.n, s.h, s.w, s.c] {
        return Ok(false);
    }
    // flipped[ky][kx][o][ci] = kernel[kh-1-ky][kw-1-kx][ci][o]
    let mut flipped = std::mem::take(&mut ws.flipped);
    flipped.clear();
    for ky in 0..s.kh {
        for kx in 0..s.kw {
            let tap = ((s.kh - 1 - ky) * s.kw + (s.kw - 1 - kx)) * s.c * s.o;
            for o in 0..s.o {
                flipped.extend((0..s.c).map(|ci| kernel[tap + ci * s.o + o]));
            }
        }
    }
    let opts = ConvForward {
        relu: false,
        parallel: linalg::may_split(),
    };
    let done = direct(dys, &bs, &back, &flipped, None, ws, dx, opts);
    ws.flipped = flipped;
    Ok(done)
}
