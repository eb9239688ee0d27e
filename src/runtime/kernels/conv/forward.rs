//! The convolution's forward: one [`simd_gemm`] product straight from the input on CPUs with
//! AVX2 + FMA, im2col + GEMM elsewhere, then bias and relu.
//!
//! Input: `x: [N, H, W, C]`, kernel `[KH, KW, C, O]`, optional bias, a [`ConvWorkspace`].
//! Output: `out: [N, OH, OW, O]` overwritten. Invariants: the workspace grows once and is
//! reused; work is split in chunks of whole samples, and a sample's result does not depend on
//! the chunking or the thread count.

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut4};

use super::im2col::{im2col, pad_chunk, tap_offsets};
use super::{dims4, Conv2dGeometry, Conv2dShape, ConvForward, ConvWorkspace, Padding2d, OP};
use crate::runtime::kernels::error::{expect_shape, shape_err, KernelError, KernelResult};
use crate::runtime::kernels::linalg::{ensure_len, flat, flat_mut, gemm, mat, mat_mut};
use crate::runtime::kernels::simd_gemm;

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
    out: ArrayViewMut4<'_, f32>,
    opts: ConvForward,
) -> KernelResult<()> {
    let s = Conv2dShape::new(dims4(x.dim()), dims4(kernel.dim()), geom)?;
    forward_shaped(x, kernel, bias, geom, &s, ws, out, opts)
}

/// [`conv2d_forward_with`] computing only the top-left `rows × cols` pixels of each sample's
/// output (see [`Conv2dShape::cropped`]) into `out: [N, rows, cols, O]`: each of them has the
/// bits it has in the whole output.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_cropped(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    geom: &Conv2dGeometry,
    (rows, cols): (usize, usize),
    ws: &mut ConvWorkspace,
    out: ArrayViewMut4<'_, f32>,
    opts: ConvForward,
) -> KernelResult<()> {
    let s = Conv2dShape::new(dims4(x.dim()), dims4(kernel.dim()), geom)?.cropped(rows, cols)?;
    forward_shaped(x, kernel, bias, geom, &s, ws, out, opts)
}

/// [`conv2d_forward_with`] for a training step whose output a floor-mode pool reads only in
/// part: computes only the top-left `rows × cols` pixels of each sample's output (those of
/// [`conv2d_forward_cropped`], with the bits they have in the whole output) into the whole
/// `out: [N, OH, OW, O]`, and sets its other pixels to zero. A reach of the whole output is
/// [`conv2d_forward_with`]. The cropped output is computed into the front of `out`, then spread
/// to its rows in place ([`spread_rows`]): no scratch buffer.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward_reached(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    geom: &Conv2dGeometry,
    (rows, cols): (usize, usize),
    ws: &mut ConvWorkspace,
    mut out: ArrayViewMut4<'_, f32>,
    opts: ConvForward,
) -> KernelResult<()> {
    let whole = Conv2dShape::new(dims4(x.dim()), dims4(kernel.dim()), geom)?;
    let s = whole.cropped(rows, cols)?;
    if (rows, cols) == (whole.oh, whole.ow) {
        return forward_shaped(x, kernel, bias, geom, &whole, ws, out, opts);
    }
    expect_shape(OP, "out", out.shape(), &whole.output())?;
    let out_flat = flat_mut(OP, "out", &mut out)?;
    // Cannot overflow: `Conv2dShape::new` checked the whole output's size, and the crop is
    // inside it.
    let front_len = s.n * s.pixels_per_sample() * s.o;
    let front = out_flat
        .get_mut(..front_len)
        .ok_or_else(|| shape_err(OP, "output shorter than its crop"))?;
    let front =
        ArrayViewMut4::from_shape(s.output(), front).map_err(|e| shape_err(OP, e.to_string()))?;
    forward_shaped(x, kernel, bias, geom, &s, ws, front, opts)?;
    spread_rows(out_flat, &whole, (rows, cols));
    Ok(())
}

/// Moves the `[N, rows, cols, O]` values at the front of `out` to their places in the whole
/// `[N, OH, OW, O]` output and zeroes every other pixel. Rows move last first: each row moves
/// to or after where it is, and after every row still to move, so no row is overwritten before
/// it has moved; the pixels after a moved row are zeroed right away, as no row still to move
/// lies there.
fn spread_rows(out: &mut [f32], whole: &Conv2dShape, (rows, cols): (usize, usize)) {
    let (row_len, whole_row) = (cols * whole.o, whole.ow * whole.o);
    let sample = whole.oh * whole_row;
    for i in (0..whole.n).rev() {
        let base = i * sample;
        out[base + rows * whole_row..base + sample].fill(0.0);
        for y in (0..rows).rev() {
            let from = (i * rows + y) * row_len;
            let to = base + y * whole_row;
            out.copy_within(from..from + row_len, to);
            out[to + row_len..to + whole_row].fill(0.0);
        }
    }
}

/// The forward of every entry point for the output sizes of `s`.
#[allow(clippy::too_many_arguments)]
#[allow(clippy::needless_pass_by_value)] // views are passed by value, like ndarray's own API
fn forward_shaped(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    geom: &Conv2dGeometry,
    s: &Conv2dShape,
    ws: &mut ConvWorkspace,
    mut out: ArrayViewMut4<'_, f32>,
    opts: ConvForward,
) -> KernelResult<()> {
    let s = *s;
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
    // A pointwise convolution's patches are the input's pixels themselves (not when cropped).
    let pointwise = s.kh == 1
        && s.kw == 1
        && geom.stride == (1, 1)
        && geom.padding == Padding2d::default()
        && (s.oh, s.ow) == (s.h, s.w);
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
pub(super) fn direct(
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
        let call = simd_gemm::GemmCall {
            lhs,
            m: rows,
            k,
            n: s.o,
            rhs: kernel,
            ldb: s.o,
            ldc: s.o,
            accumulate: false,
            epilogue,
            parallel: opts.parallel,
        };
        if !simd_gemm::gemm(&call, dst) {
            return false;
        }
        n0 += count;
    }
    true
}
