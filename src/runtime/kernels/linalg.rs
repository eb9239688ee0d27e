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
//! activations, norms) runs on the calling thread; these are memory-bound and cheap next to the
//! GEMMs, and a second pool (rayon) would fight matrixmultiply's threads for the 2 cores.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayBase, ArrayView2, ArrayViewMut2, Data, DataMut, Dimension};

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
    general_mat_mul(alpha, a, b, beta, c);
    Ok(())
}

/// Grows `buf` to at least `len` elements (never shrinks, so steady state allocates nothing).
pub(crate) fn ensure_len(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// Sums the rows of a `rows × cols` matrix into `out` (length `cols`), overwriting `out`.
pub(crate) fn column_sums(data: &[f32], cols: usize, out: &mut [f32]) {
    out.fill(0.0);
    if cols == 0 {
        return;
    }
    for row in data.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}
