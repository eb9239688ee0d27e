//! Flat-slice views and the GEMM entry point shared by conv, dense and the recurrent kernels.
//!
//! Every kernel works on standard-layout (row-major contiguous) tensors and reinterprets them as
//! 2-D matrices. [`gemm`] validates shapes, then runs matrix-vector products in the
//! hand-written loops below, plain products (`alpha = 1`, `beta` 0 or 1) of matrices in
//! contiguous memory in our own kernel ([`simd_gemm`], on CPUs with AVX2 + FMA), and anything
//! else in ndarray's `general_mat_mul` (matrixmultiply's `sgemm`, threaded by
//! `MATMUL_NUM_THREADS`).
//!
//! Threading policy: only GEMM is multi-threaded. Our kernel splits rows (or columns) between
//! the intra-op pool's threads ([`crate::runtime::pool`], as many as the current rayon pool
//! has), except inside [`serial`], which the batch-sliced kernels use because they already run
//! one slice of the batch per thread, and inside a pool job; matrixmultiply splits the output
//! into blocks. Either way each output element is summed by one thread in a fixed order, so a fixed
//! thread count gives bit-identical results. Everything else (im2col, pools, activations,
//! norms) runs on the calling thread, and so do matrix-vector products (one output row or
//! column), which skip GEMM for a hand-written dot/axpy loop: they are memory-bound and cheap
//! next to the GEMMs.

use ndarray::linalg::general_mat_mul;
use ndarray::{
    ArrayBase, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Data, DataMut, Dimension,
    ShapeBuilder,
};

use super::error::{shape_err, KernelError, KernelResult};
use super::simd_gemm;

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
    if let Some(accumulate) = plain_update(alpha, beta) {
        if own_gemm(a, b, accumulate, c) {
            return Ok(());
        }
    }
    general_mat_mul(alpha, a, b, beta, c);
    Ok(())
}

/// `Some(accumulate)` when `c ← alpha·a·b + beta·c` is our kernel's plain overwrite
/// (`alpha = 1, beta = 0`) or add (`alpha = 1, beta = 1`).
// Exact tests on purpose: only exactly 1 and 0 are the kernel's "add" and "overwrite".
#[allow(clippy::float_cmp)]
fn plain_update(alpha: f32, beta: f32) -> Option<bool> {
    (alpha == 1.0 && (beta == 0.0 || beta == 1.0)).then_some(beta == 1.0)
}

thread_local! {
    /// Set while the calling thread runs one slice of a batch split by the caller (the
    /// interpreter): its GEMMs then stay on this thread.
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The transposed right-hand matrix of the last [`own_gemm`] that needed one, kept so the
    /// steady state allocates nothing.
    static PACKED: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Runs `f` with this thread's GEMMs kept on this thread (see the module doc).
pub(crate) fn serial<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SERIAL.with(|s| s.replace(true)));
    f()
}

/// Whether a kernel on this thread may split its work between the pool's threads (false
/// inside [`serial`] and inside a part of an intra-op pool job).
pub(crate) fn may_split() -> bool {
    !SERIAL.with(std::cell::Cell::get) && !crate::runtime::pool::in_job()
}

/// `c ← a·b` (or `c += a·b`) in [`simd_gemm`] when the CPU has it and the views lie in
/// contiguous memory (row-major or transposed). `false`: not done.
fn own_gemm(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    accumulate: bool,
    c: &mut ArrayViewMut2<'_, f32>,
) -> bool {
    let (Some([row_stride, col_stride]), Some(data)) =
        (strides(a.strides()), a.as_slice_memory_order())
    else {
        return false;
    };
    let lhs = simd_gemm::Lhs::Strided {
        data,
        row_stride,
        col_stride,
    };
    own_gemm_lhs(lhs, a.dim(), b, accumulate, c)
}

/// Non-negative strides as `usize`.
fn strides(s: &[isize]) -> Option<[usize; 2]> {
    Some([usize::try_from(s[0]).ok()?, usize::try_from(s[1]).ok()?])
}

/// [`own_gemm`] for an `A` (`m × k`) already described as a [`simd_gemm::Lhs`]. A transposed
/// `b` is first copied row-major (it is a weight or gradient matrix, small next to the product).
fn own_gemm_lhs(
    lhs: simd_gemm::Lhs<'_>,
    (m, k): (usize, usize),
    b: &ArrayView2<'_, f32>,
    accumulate: bool,
    c: &mut ArrayViewMut2<'_, f32>,
) -> bool {
    if !simd_gemm::available() {
        return false;
    }
    let (k2, n) = b.dim();
    let (Some([brs, bcs]), Some([crs, ccs])) = (strides(b.strides()), strides(c.strides())) else {
        return false;
    };
    if k2 != k || c.dim() != (m, n) || (ccs != 1 && n > 1) || (crs < n && m > 1) {
        return false;
    }
    let Some(bdata) = b.as_slice_memory_order() else {
        return false;
    };
    // Small products run whole on this thread; large ones split on the intra-op pool.
    let parallel = may_split();
    let Some(cdata) = c.as_slice_memory_order_mut() else {
        return false;
    };
    let ldc = if m > 1 { crs } else { n };
    let epilogue = simd_gemm::Epilogue::NONE;
    if bcs == 1 || n == 1 {
        let ldb = if k > 1 { brs } else { n };
        let call = simd_gemm::GemmCall {
            lhs,
            m,
            k,
            n,
            rhs: bdata,
            ldb,
            ldc,
            accumulate,
            epilogue,
            parallel,
        };
        return simd_gemm::gemm(&call, cdata);
    }
    if brs != 1 {
        return false;
    }
    // `b` is the transpose of a row-major `n × k` matrix (`bdata`, rows `bcs` apart): copy it
    // row-major, one contiguous source row at a time.
    let mut packed = PACKED.with(std::cell::Cell::take);
    packed.clear();
    packed.resize(k * n, 0.0);
    for (j, src) in bdata.chunks(bcs.max(1)).take(n).enumerate() {
        for (kk, &v) in src.iter().take(k).enumerate() {
            packed[kk * n + j] = v;
        }
    }
    let call = simd_gemm::GemmCall {
        lhs,
        m,
        k,
        n,
        rhs: &packed,
        ldb: n,
        ldc,
        accumulate,
        epilogue,
        parallel,
    };
    let done = simd_gemm::gemm(&call, cdata);
    PACKED.with(|p| p.set(packed));
    done
}

/// `c ← a·b + beta·c` for `A` = `rows` rows of `cols` elements, `row_stride` apart, starting at
/// `data[0]` (e.g. one timestep of every sequence in a `[N, T, F]` buffer). One row is a
/// matrix-vector product: [`gemm`]'s own loop.
pub(crate) fn gemm_rows(
    op: &'static str,
    data: &[f32],
    (rows, cols, row_stride): (usize, usize, usize),
    b: &ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
) -> KernelResult<()> {
    let lhs = simd_gemm::Lhs::Strided {
        data,
        row_stride,
        col_stride: 1,
    };
    if let (Some(accumulate), true) = (plain_update(1.0, beta), rows > 1) {
        if own_gemm_lhs(lhs, (rows, cols), b, accumulate, c) {
            return Ok(());
        }
    }
    let a = ArrayView2::from_shape((rows, cols).strides((row_stride, 1)), data)
        .map_err(|e| shape_err(op, e.to_string()))?;
    gemm(op, 1.0, &a, b, beta, c)
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

/// `dst ← srcᵀ` for a row-major `rows × cols` `src`: `dst` becomes the row-major
/// `cols × rows` transpose (grown as [`ensure_len`] does, then cut to `rows·cols`). Sixteen
/// rows of `src` at a time are read along their columns, so each write is a run of sixteen
/// contiguous floats and each read line is used sixteen times while in cache. `false`,
/// touching nothing, when `src` does not hold `rows × cols` values.
pub(crate) fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut Vec<f32>) -> bool {
    const BLOCK: usize = 16;
    if rows.checked_mul(cols) != Some(src.len()) {
        return false;
    }
    ensure_len(dst, src.len());
    dst.truncate(src.len());
    for r0 in (0..rows).step_by(BLOCK) {
        let r1 = (r0 + BLOCK).min(rows);
        let block = &src[r0 * cols..r1 * cols];
        for (c, column) in dst.chunks_exact_mut(rows).enumerate() {
            for (d, row) in column[r0..r1].iter_mut().zip(block.chunks_exact(cols)) {
                *d = row[c];
            }
        }
    }
    true
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
