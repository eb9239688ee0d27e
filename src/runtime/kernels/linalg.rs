//! Flat-slice views and the GEMM entry point shared by conv, dense and the recurrent kernels.
//!
//! Every kernel works on standard-layout (row-major contiguous) tensors and reinterprets them as
//! 2-D matrices. [`gemm`] validates shapes and then calls ndarray's `general_mat_mul`, which for
//! `f32` always lands in matrixmultiply's `sgemm` (AVX-512 kernel chosen at run time, threaded
//! by `MATMUL_NUM_THREADS`, default: physical cores, at most 4).
//!
//! Threading policy of the kernels: GEMM is the only multi-threaded part (matrixmultiply splits
//! the output into blocks; each output element is summed by one thread in a fixed order, so a
//! fixed thread count gives bit-identical results). Everything else (im2col, pools,
//! activations, norms) runs on the calling thread, and so do matrix-vector products (one
//! output row or column), which skip sgemm for a hand-written dot/axpy loop; these are
//! memory-bound and cheap next to the GEMMs, and a second pool (rayon) would fight
//! matrixmultiply's threads for the 2 cores.

use ndarray::linalg::general_mat_mul;
use ndarray::{
    ArrayBase, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Data, DataMut, Dimension,
};

use super::error::{shape_err, KernelError, KernelResult};

/// The flat data of a standard-layout tensor, or a layout error naming it.
pub(crate) fn flat<'a, S, D>(
    op: &'static str,
    tensor: &'static str,
    a: &'a ArrayBase<S, D>,
) -> KernelResult<&'a [f32]>
where
    S: Data<Elem = f32>,
    D: Dimension,
{
    a.as_slice().ok_or(KernelError::Layout { op, tensor })
}

/// The flat mutable data of a standard-layout tensor, or a layout error naming it.
pub(crate) fn flat_mut<'a, S, D>(
    op: &'static str,
    tensor: &'static str,
    a: &'a mut ArrayBase<S, D>,
) -> KernelResult<&'a mut [f32]>
where
    S: DataMut<Elem = f32>,
    D: Dimension,
{
    a.as_slice_mut().ok_or(KernelError::Layout { op, tensor })
}

/// A `rows × cols` row-major matrix view over the front of `data`.
pub(crate) fn mat<'a>(
    op: &'static str,
    data: &'a [f32],
    rows: usize,
    cols: usize,
) -> KernelResult<ArrayView2<'a, f32>> {
    let len = rows.checked_mul(cols).ok_or(KernelError::Overflow { op })?;
    let data = data
        .get(..len)
        .ok_or_else(|| shape_err(op, format!("buffer of {} < {rows}x{cols}", data.len())))?;
    ArrayView2::from_shape((rows, cols), data).map_err(|e| shape_err(op, e.to_string()))
}

/// A mutable `rows × cols` row-major matrix view over the front of `data`.
pub(crate) fn mat_mut<'a>(
    op: &'static str,
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
) -> KernelResult<ArrayViewMut2<'a, f32>> {
    let len = rows.checked_mul(cols).ok_or(KernelError::Overflow { op })?;
    let available = data.len();
    let data = data
        .get_mut(..len)
        .ok_or_else(|| shape_err(op, format!("buffer of {available} < {rows}x{cols}")))?;
    ArrayViewMut2::from_shape((rows, cols), data).map_err(|e| shape_err(op, e.to_string()))
}

/// `c ← alpha · a · b + beta · c`, after checking that the shapes agree.
pub(crate) fn gemm(
    op: &'static str,
    alpha: f32,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) -> KernelResult<()> {
    let ((m, k), (k2, n), (m2, n2)) = (a.dim(), b.dim(), c.dim());
    if k != k2 || m != m2 || n != n2 {
        return Err(shape_err(
            op,
            format!("gemm {m}x{k} · {k2}x{n} into {m2}x{n2}"),
        ));
    }
    if n == 1 {
        let y = c.column_mut(0);
        if gemv(alpha, a, &b.column(0), beta, y) {
            return Ok(());
        }
    } else if m == 1 {
        let y = c.row_mut(0);
        if gemv(alpha, &b.t(), &a.row(0), beta, y) {
            return Ok(());
        }
    }
    general_mat_mul(alpha, a, b, beta, c);
    Ok(())
}

/// [`gemv_body`], compiled for the widest SIMD the CPU has (see [`super::simd_train`]).
fn gemv(
    alpha: f32,
    a: &ArrayView2<'_, f32>,
    x: &ArrayView1<'_, f32>,
    beta: f32,
    y: ArrayViewMut1<'_, f32>,
) -> bool {
    super::simd_train::vectorized(
        #[inline(always)]
        || gemv_body(alpha, a, x, beta, y),
    )
}

/// `y ← alpha · a · x + beta · y` on the calling thread, for a matrix with contiguous rows or
/// contiguous columns and contiguous `x`, `y`; returns false (touching nothing) otherwise.
///
/// Matrix-vector products (a dense layer at batch 1, a one-unit output, its gradient) are
/// memory-bound: sgemm would copy ("pack") the whole matrix and hand blocks to its threads for a
/// single pass of multiply-adds. `beta == 0` ignores the old `y` (NaN-safe, as BLAS).
// `alpha == 1.0` is an exact test on purpose: only an exact 1 may skip the scaling.
#[allow(clippy::inline_always, clippy::float_cmp)]
#[inline(always)]
fn gemv_body(
    alpha: f32,
    a: &ArrayView2<'_, f32>,
    x: &ArrayView1<'_, f32>,
    beta: f32,
    mut y: ArrayViewMut1<'_, f32>,
) -> bool {
    let (Some(xs), Some(ys)) = (x.as_slice(), y.as_slice_mut()) else {
        return false;
    };
    let (rows, cols) = a.dim();
    let [row_stride, col_stride] = [a.strides()[0], a.strides()[1]];
    if rows == 0 || cols == 0 {
        return false;
    }
    if col_stride == 1 || cols == 1 {
        // Row-major: one dot product per output element.
        let finish = |yi: &mut f32, s: f32| {
            let s = alpha * s;
            *yi = if beta == 0.0 { s } else { s + beta * *yi };
        };
        if let Some(all) = a.as_slice() {
            if beta == 0.0 && alpha == 1.0 && super::simd_train::row_dots(all, cols, xs, ys) {
                return true;
            }
            for (yi, row) in ys.iter_mut().zip(all.chunks_exact(cols)) {
                finish(yi, dot(row, xs));
            }
        } else {
            for (yi, row) in ys.iter_mut().zip(a.rows()) {
                let Some(row) = row.to_slice() else {
                    return false;
                };
                finish(yi, dot(row, xs));
            }
        }
        return true;
    }
    if row_stride == 1 {
        // Column-major: `y += (alpha·x_k) · a[:, k]` over k, vectorized along y.
        if beta == 0.0 {
            ys.fill(0.0);
        } else {
            // Scaling by exactly 1 is the identity, so no special case is needed.
            for v in ys.iter_mut() {
                *v *= beta;
            }
        }
        let at = a.t();
        if let Some(all) = at.as_slice() {
            axpy_columns(alpha, all, xs, ys);
            return true;
        }
        for (k, &xk) in xs.iter().enumerate() {
            let Some(col) = a.column(k).to_slice() else {
                return false;
            };
            let s = alpha * xk;
            ys.iter_mut().zip(col).for_each(|(v, &c)| *v += s * c);
        }
        return true;
    }
    false
}

/// `y += Σ_k (alpha·x_k) · cols[k]` where `cols` holds the columns back to back (each `y.len()`
/// long). `y` is walked in blocks of [`BLOCK`] kept in registers across all k, so each column
/// element is loaded once and `y` is stored once per block.
#[allow(clippy::inline_always)]
#[inline(always)]
fn axpy_columns(alpha: f32, cols: &[f32], xs: &[f32], ys: &mut [f32]) {
    const BLOCK: usize = 16;
    let len = ys.len();
    let mut start = 0;
    for block in ys.chunks_mut(BLOCK) {
        let width = block.len();
        if width == BLOCK {
            let mut acc = [0.0f32; BLOCK];
            acc.copy_from_slice(block);
            for (col, &xk) in cols.chunks_exact(len).zip(xs) {
                let s = alpha * xk;
                let part: &[f32; BLOCK] = match col[start..start + BLOCK].try_into() {
                    Ok(p) => p,
                    Err(_) => continue,
                };
                for l in 0..BLOCK {
                    acc[l] += s * part[l];
                }
            }
            block.copy_from_slice(&acc);
        } else {
            for (col, &xk) in cols.chunks_exact(len).zip(xs) {
                let s = alpha * xk;
                block
                    .iter_mut()
                    .zip(&col[start..start + width])
                    .for_each(|(v, &c)| *v += s * c);
            }
        }
        start += width;
    }
}

/// `Σ a_i·b_i` with sixteen independent partial sums (four SIMD registers), combined as a
/// fixed pairwise tree, plus the tail in order. Inlined into the per-row loop: for short rows
/// the call would cost as much as the work.
#[allow(clippy::inline_always)]
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(p, q)| p * q)
        .sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        let (Ok(ca), Ok(cb)) = (<&[f32; LANES]>::try_from(ca), <&[f32; LANES]>::try_from(cb))
        else {
            continue;
        };
        for l in 0..LANES {
            acc[l] += ca[l] * cb[l];
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0] + tail
}

/// Grows `buf` to at least `len` elements (never shrinks, so steady state allocates nothing).
pub(crate) fn ensure_len(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// Sums the rows of a `rows × cols` matrix into `out` (length `cols`), overwriting `out`.
/// A single column is summed with eight independent partial sums (combined pairwise), so the
/// loop is not one long chain of dependent adds.
pub(crate) fn column_sums(data: &[f32], cols: usize, out: &mut [f32]) {
    out.fill(0.0);
    if cols == 0 {
        return;
    }
    if let [total] = out {
        const LANES: usize = 8;
        let mut acc = [0.0f32; LANES];
        let chunks = data.chunks_exact(LANES);
        let tail: f32 = chunks.remainder().iter().sum();
        for c in chunks {
            for l in 0..LANES {
                acc[l] += c[l];
            }
        }
        let quads = [
            acc[0] + acc[4],
            acc[1] + acc[5],
            acc[2] + acc[6],
            acc[3] + acc[7],
        ];
        *total = (quads[0] + quads[2]) + (quads[1] + quads[3]) + tail;
        return;
    }
    for row in data.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}
