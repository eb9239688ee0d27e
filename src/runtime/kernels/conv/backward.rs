//! The convolution's backward: `dbias = Σ dy`, `dkernel = colsᵀ · dy`, `dx` by col2im of
//! `dy · kernelᵀ`, or with AVX2 + FMA `dkernel` from the receptive fields read in place (the
//! whole batch in one product when unpadded), a stride-1 `dx` as a direct convolution of the
//! padded `dy` with the flipped kernel where that is cheaper, and otherwise `dx` by col2im with
//! one slice of the batch per thread. A reached backward ([`conv2d_backward_reached`]) runs
//! the same products over the top-left pixels of `dy` a pool read, gathered first.
//!
//! Input: `x`, the kernel, `dy: [N, OH, OW, O]` and a [`ConvWorkspace`]. Output: the
//! [`Conv2dGrads`] buffers, each overwritten. Invariants: as the forward, results do not depend
//! on the chunking.

use ndarray::{ArrayView4, ArrayViewMut1, ArrayViewMut4};

use super::forward::direct;
use super::im2col::{col2im, im2col, pad_chunk, tap_offsets};
use super::{dims4, Conv2dGeometry, Conv2dShape, ConvForward, ConvWorkspace, Padding2d, OP};
use crate::runtime::kernels::error::{expect_shape, shape_err, KernelResult};
use crate::runtime::kernels::linalg::{
    self, column_sums, ensure_len, flat, flat_mut, gemm, mat, mat_mut,
};
use crate::runtime::kernels::simd_gemm;

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
    backward(x, kernel, dy, geom, None, ws, grads)
}

/// [`conv2d_backward`] of a [`conv2d_forward_reached`](super::conv2d_forward_reached) step:
/// `dy: [N, OH, OW, O]` is zero outside the top-left `rows × cols` pixels of each sample (what
/// the pool after the convolution read), and the products run over those pixels only (gathered
/// into the workspace). `dbias` sums the whole `dy`, as [`conv2d_backward`] does. The pixels
/// left out add exact zeros to sums that cannot be −0, so on our GEMM kernel the gradients
/// have [`conv2d_backward`]'s bits (on the matrixmultiply fallback, to f32 rounding), unless
/// the input or the kernel holds an infinity or NaN (which times a left-out zero is NaN).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_reached(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    geom: &Conv2dGeometry,
    reach: (usize, usize),
    ws: &mut ConvWorkspace,
    grads: Conv2dGrads<'_>,
) -> KernelResult<()> {
    backward(x, kernel, dy, geom, Some(reach), ws, grads)
}

/// Both entry points: the whole output's `dy`, and the reach of its products (`None`: all).
#[allow(clippy::needless_pass_by_value)] // views are passed by value, like ndarray's own API
fn backward(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    geom: &Conv2dGeometry,
    reach: Option<(usize, usize)>,
    ws: &mut ConvWorkspace,
    grads: Conv2dGrads<'_>,
) -> KernelResult<()> {
    let Conv2dGrads {
        dx,
        mut dkernel,
        dbias,
    } = grads;
    let whole = Conv2dShape::new(dims4(x.dim()), dims4(kernel.dim()), geom)?;
    expect_shape(OP, "dy", dy.shape(), &whole.output())?;
    if let Some(dx) = &dx {
        expect_shape(OP, "dx", dx.shape(), x.shape())?;
    }
    expect_shape(OP, "dkernel", dkernel.shape(), kernel.shape())?;
    let xs = flat(OP, "x", &x)?;
    let dy_whole = flat(OP, "dy", &dy)?;
    let mut dx = dx;
    let dxs = match dx.as_mut() {
        Some(d) => Some(flat_mut(OP, "dx", d)?),
        None => None,
    };
    let dk = flat_mut(OP, "dkernel", &mut dkernel)?;
    if let Some(mut db) = dbias {
        expect_shape(OP, "dbias", db.shape(), &[whole.o])?;
        column_sums(dy_whole, whole.o, flat_mut(OP, "dbias", &mut db)?);
    }
    let kflat = flat(OP, "kernel", &kernel)?;
    let (rows, cols) = reach.unwrap_or((whole.oh, whole.ow));
    let s = whole.cropped(rows, cols)?;
    if s == whole {
        return products(xs, dy_whole, (&s, &whole), geom, kflat, ws, dxs, dk);
    }
    let mut reached = std::mem::take(&mut ws.dy_reached);
    gather_rows(dy_whole, &whole, (rows, cols), &mut reached);
    let result = products(xs, &reached, (&s, &whole), geom, kflat, ws, dxs, dk);
    ws.dy_reached = reached;
    result
}

/// The top-left `rows × cols` pixels of each sample of `dy: [N, OH, OW, O]`, as
/// `[N, rows, cols, O]` into `out` (replaced).
fn gather_rows(dy: &[f32], whole: &Conv2dShape, (rows, cols): (usize, usize), out: &mut Vec<f32>) {
    out.clear();
    let (row_len, whole_row) = (cols * whole.o, whole.ow * whole.o);
    let sample_len = whole.oh * whole_row;
    if sample_len == 0 {
        return;
    }
    for sample in dy.chunks_exact(sample_len) {
        for row in sample.chunks_exact(whole_row).take(rows) {
            out.extend_from_slice(&row[..row_len]);
        }
    }
}

/// `dkernel` and (when asked) `dx` from `dys: [N, s.oh, s.ow, O]`, the pixels of the
/// convolution's whole output `whole` that `s` keeps (all of them, or a top-left crop).
#[allow(clippy::too_many_arguments)]
fn products(
    xs: &[f32],
    dys: &[f32],
    (s, whole): (&Conv2dShape, &Conv2dShape),
    geom: &Conv2dGeometry,
    kflat: &[f32],
    ws: &mut ConvWorkspace,
    mut dxs: Option<&mut [f32]>,
    dk_flat: &mut [f32],
) -> KernelResult<()> {
    let s = *s;
    let ks = mat(OP, kflat, s.patch_len(), s.o)?;
    let own = simd_gemm::available();
    let dk_done = own && weight_grad_direct(xs, dys, &s, geom, ws, dk_flat);
    let dx_done = match dxs.as_deref_mut() {
        Some(d) if own => {
            if input_grad_direct(dys, (&s, whole), geom, kflat, ws, d)? {
                true
            } else if dk_done {
                input_grad_sliced(dys, &s, geom, kflat, ws, d)?;
                true
            } else {
                false
            }
        }
        Some(_) => false,
        None => true,
    };
    if dk_done && dx_done {
        return Ok(());
    }
    // What is left for the patch matrix: im2col + GEMM for dkernel, dcols + col2im for dx.
    let mut dxs = if dx_done { None } else { dxs };
    let mut dk = if dk_done {
        None
    } else {
        Some(mat_mut(OP, dk_flat, s.patch_len(), s.o)?)
    };
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
    // Unpadded, the receptive fields are read from `x` itself: the whole batch is one product
    // (the kernel blocks its long `k` itself). Padded, a chunk of samples is copied at a time.
    let chunk = if padded { s.samples_per_chunk() } else { s.n };
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
        let call = simd_gemm::GemmCall {
            lhs,
            m: taps,
            k: rows,
            n: s.o,
            rhs: dy,
            ldb: s.o,
            ldc: s.o,
            accumulate: n0 > 0,
            epilogue,
            parallel: linalg::may_split(),
        };
        if !simd_gemm::gemm(&call, dk) {
            return false;
        }
        n0 += count;
    }
    true
}

/// Below this many multiply-adds the sliced input gradient stays on one thread.
const SLICE_MIN_MACS: usize = 1 << 20;

/// `dx` by the patch gradient matrix, `dcols = dy · kernelᵀ` in chunks of samples each
/// scattered back by col2im, with the batch split into one contiguous slice per thread (its
/// products kept on that thread, `kernels::run_slices`). A sample's `dx` is written by one
/// thread, row products and col2im's adds in the order of the unsliced loop, so the values do
/// not depend on the slicing.
fn input_grad_sliced(
    dys: &[f32],
    s: &Conv2dShape,
    geom: &Conv2dGeometry,
    kernel: &[f32],
    ws: &mut ConvWorkspace,
    dx: &mut [f32],
) -> KernelResult<()> {
    let patch = s.patch_len();
    let per_sample = s.pixels_per_sample();
    let in_sample = s.h * s.w * s.c;
    let chunk = s.samples_per_dx_chunk();
    let macs =
        s.n.saturating_mul(per_sample)
            .saturating_mul(patch)
            .saturating_mul(s.o);
    let threads = if linalg::may_split() && macs >= SLICE_MIN_MACS {
        rayon::current_num_threads()
    } else {
        1
    };
    let slices = crate::runtime::kernels::batch_ranges(s.n, threads);
    let chunk_len = chunk * per_sample * patch;
    // kernelᵀ once per call (a row-major `[O, patch]` right-hand side for every chunk).
    let mut kt = std::mem::take(&mut ws.kernel_t);
    if !linalg::transpose_into(kernel, patch, s.o, &mut kt) {
        ws.kernel_t = kt;
        return Err(shape_err(OP, "kernel size is not patch × filters"));
    }
    ensure_len(&mut ws.dcols, chunk_len * slices.len());
    let ktm = mat(OP, &kt, s.o, patch)?;
    let mut jobs = Vec::with_capacity(slices.len());
    let mut dx_rest: &mut [f32] = dx;
    let mut dcols_rest: &mut [f32] = &mut ws.dcols;
    for &(a, b) in &slices {
        let (dx_part, dx_later) = std::mem::take(&mut dx_rest).split_at_mut((b - a) * in_sample);
        let (dcols, dcols_later) = std::mem::take(&mut dcols_rest).split_at_mut(chunk_len);
        dx_rest = dx_later;
        dcols_rest = dcols_later;
        jobs.push((a, b, dx_part, dcols));
    }
    let result = crate::runtime::kernels::run_slices(jobs, |(a, b, dx_part, dcols)| {
        dx_part.fill(0.0);
        let mut n0 = a;
        while n0 < b {
            let count = chunk.min(b - n0);
            let rows = count * per_sample;
            let dyc = mat(OP, &dys[n0 * per_sample * s.o..], rows, s.o)?;
            let mut dc = mat_mut(OP, dcols, rows, patch)?;
            gemm(OP, 1.0, &dyc, &ktm, 0.0, &mut dc)?;
            col2im(dcols, s, geom, n0 - a, count, dx_part);
            n0 += count;
        }
        Ok(())
    });
    ws.kernel_t = kt;
    result
}

/// `dx` for a stride-1 convolution as a direct convolution of `dy`, zero-padded by the dilated
/// kernel's reach less the forward padding, with the kernel flipped in space and its channel
/// axes swapped: no patch gradient matrix and no col2im scatter. `Ok(false)` (nothing
/// meaningful written) for strides above 1 or padding wider than the kernel's reach.
fn input_grad_direct(
    dys: &[f32],
    (s, whole): (&Conv2dShape, &Conv2dShape),
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
    // gradient matrix and col2im do fewer multiply-adds. Decided on the whole output, so that
    // a crop (whose left-out pixels become more of that border) keeps the whole one's path.
    let worth_it = (s.h * s.w).saturating_mul(4) <= (whole.oh * whole.ow).saturating_mul(5);
    let fits = worth_it
        && geom.stride == (1, 1)
        && p.top <= reach_h
        && p.bottom <= reach_h
        && p.left <= reach_w
        && p.right <= reach_w;
    if !fits {
        return Ok(false);
    }
    // After `dy`, as many zeros again as a crop left out: the back convolution's output is
    // `oh + top + bottom - reach_h = h` rows (`bottom = reach_h - p.bottom` uncropped).
    let (Some(bottom), Some(right)) = (
        (s.h + p.top).checked_sub(s.oh),
        (s.w + p.left).checked_sub(s.ow),
    ) else {
        return Ok(false);
    };
    let back = Conv2dGeometry {
        stride: (1, 1),
        dilation: geom.dilation,
        padding: Padding2d {
            top: reach_h - p.top,
            bottom,
            left: reach_w - p.left,
            right,
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
