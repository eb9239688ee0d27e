//! Numeric kernels of the interpreter: pure functions on `f32` ndarray tensors, forward and
//! backward, channels-last (NHWC), Keras semantics and Keras weight layouts.
//!
//! Inputs are views; outputs are written into caller-provided `ArrayViewMut` buffers and
//! scratch memory lives in reusable workspaces ([`conv::ConvWorkspace`], the recurrent caches),
//! so the interpreter allocates nothing per step once buffers are sized. Every tensor must be
//! in standard (row-major contiguous) layout; a strided view is refused with
//! [`KernelError::Layout`] instead of being copied behind the caller's back. Backward kernels
//! overwrite their gradient outputs (they never accumulate).
//!
//! Threading: GEMM is parallel (our [`simd_gemm`] over the intra-op pool
//! [`crate::runtime::pool`], or matrixmultiply's own pool, `MATMUL_NUM_THREADS`; see the
//! `linalg` notes), and, on rayon's pool, [`rnn::rnn_forward_sliced`] and
//! [`conv_sliced`] run a recurrent layer's or a convolution's batch slices side by side, as
//! [`attention::mha_forward`] does for multi-head attention. For a
//! fixed thread count every kernel is bit-deterministic.

// Kernels take array views by value, like ndarray's own API: a view is a pointer plus its
// shape, cheap to move, and taking `&ArrayView` would only add an indirection for callers.
#![allow(clippy::needless_pass_by_value)]

pub mod activation;
pub mod attention;
pub mod batch_norm;
pub mod conv;
pub mod conv_sliced;
pub mod conv_transpose;
pub mod dense;
pub mod dense_mse;
pub mod depthwise;
pub mod dropout;
pub mod embedding;
pub mod error;
pub mod fastmath;
pub mod isa;
pub mod layer_norm;
pub(crate) mod linalg;
pub mod masked_pool;
pub mod merge;
pub(crate) mod panels;
pub mod pool;
pub mod rnn;
pub mod simd_act;
pub mod simd_gemm;
pub mod simd_train;
pub mod upsample;

pub use error::{KernelError, KernelResult};

/// One thread's rows in [`row_parts`]: their count, their input and their output.
pub type RowPart<'a> = (usize, &'a [f32], &'a mut [f32]);

/// `x` and `out` cut at the row ranges of `slices` (rows of `x_width` and of `out_width`
/// values): one `(rows, x part, out part)` per range, in order; `None` when either is too
/// short. How a step gives each thread its rows' input and output.
pub fn row_parts<'a>(
    x: &'a [f32],
    x_width: usize,
    out: &'a mut [f32],
    out_width: usize,
    slices: &[(usize, usize)],
) -> Option<Vec<RowPart<'a>>> {
    let mut parts = Vec::with_capacity(slices.len());
    let (mut x_rest, mut out_rest) = (x, out);
    for &(start, end) in slices {
        let rows = end.checked_sub(start)?;
        let (xp, x_later) = x_rest.split_at_checked(rows.checked_mul(x_width)?)?;
        let (op, o_later) =
            std::mem::take(&mut out_rest).split_at_mut_checked(rows.checked_mul(out_width)?)?;
        (x_rest, out_rest) = (x_later, o_later);
        parts.push((rows, xp, op));
    }
    Some(parts)
}

/// Splits `n` samples into at most `parts` contiguous ranges `(start, end)` of nearly equal
/// size (at least one range, empty when `n` is 0): how the batch-sliced kernels and the
/// interpreter give each thread its slice.
pub fn batch_ranges(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let parts = parts.clamp(1, n.max(1));
    let (base, extra) = (n / parts, n % parts);
    let mut at = 0;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let r = (at, at + len);
            at += len;
            r
        })
        .collect()
}

/// Runs one job per batch slice as the parts of one intra-op pool run ([`pool::try_run_each`];
/// a single job on this thread), each with its GEMMs kept on its thread ([`linalg::serial`]):
/// how the batch-sliced kernels run. The pool's workers spin for a while after a run, so the
/// many slice sections of a training step do not each pay a sleeping thread's wake-up, as
/// they did on rayon's workers.
///
/// [`pool::try_run_each`]: crate::runtime::pool::try_run_each
pub(crate) fn run_slices<J: Send>(
    jobs: Vec<J>,
    f: impl Fn(J) -> KernelResult<()> + Sync,
) -> KernelResult<()> {
    let f = |j| linalg::serial(|| f(j));
    crate::runtime::pool::try_run_each(jobs, f)
}

#[cfg(test)]
mod tests;
