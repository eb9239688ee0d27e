//! The LSTM forward for inference only: nothing is kept for a backward pass, so each timestep
//! works on a few small buffers that stay in cache instead of `[N, T, ·]` arrays.
//!
//! Per timestep, `[x_t | h_{t−1}]` (`N × (F+U)`) is multiplied by the stacked weights
//! `[W; U]` (`(F+U) × 4U`) in one GEMM (a longer sum per tile than two products, and no
//! `X·W` array for every timestep), then one fused pass per sample adds the bias, applies the
//! gate activations, updates `c` and writes `h` both into the next step's left-hand rows and
//! into the output. Keras semantics and gate order (i, f, c, o) as in [`super::lstm`]; the
//! sums are taken in another order than the training forward's (`x·W` and `h·U` in one chain),
//! so the two agree to f32 rounding, not bit for bit.

#![allow(clippy::inline_always)]

use ndarray::{ArrayView2, ArrayView3, ArrayViewMutD};

use super::{RnnCache, RnnParams, OP};
use crate::runtime::kernels::error::{expect_shape, shape_err, KernelResult};
use crate::runtime::kernels::fastmath;
use crate::runtime::kernels::linalg::{ensure_len, flat, flat_mut, gemm, mat, mat_mut};
use crate::runtime::kernels::simd_train::vectorized;

/// LSTM inference of `x: [N, T, F]` into `out` (`[N, T, U]` with `return_sequences`, else
/// `[N, U]`), with the scratch buffers of `cache`.
pub(super) fn lstm_infer(
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    return_sequences: bool,
    cache: &mut RnnCache,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let (n, t, f) = x.dim();
    let (u, gu) = p.recurrent.dim();
    if gu != 4 * u || p.kernel.dim() != (f, gu) || p.bias.len() != gu {
        return Err(shape_err(OP, "LSTM weights do not fit the input"));
    }
    let want: &[usize] = if return_sequences {
        &[n, t, u]
    } else {
        &[n, u]
    };
    expect_shape(OP, "out", out.shape(), want)?;
    let width = f + u;
    // Scratch: stacked weights, the step's left-hand rows, the gate sums, the cell state.
    let stacked = &mut cache.xw;
    ensure_len(stacked, width * gu);
    let (kernel, recurrent) = (
        flat(OP, "kernel", &p.kernel)?,
        flat(OP, "recurrent", &p.recurrent)?,
    );
    stacked[..f * gu].copy_from_slice(kernel);
    stacked[f * gu..width * gu].copy_from_slice(recurrent);
    ensure_len(&mut cache.h_prev, n * width);
    ensure_len(&mut cache.zrec, n * gu);
    ensure_len(&mut cache.c_prev, n * u);
    cache.config = None;
    let rows = &mut cache.h_prev[..n * width];
    rows.fill(0.0);
    let cell = &mut cache.c_prev[..n * u];
    cell.fill(0.0);
    let bias = flat(OP, "bias", &p.bias)?;
    let xs = flat(OP, "x", &x)?;
    let outs = flat_mut(OP, "out", &mut out)?;
    let weights = mat(OP, &cache.xw[..width * gu], width, gu)?;
    for step in 0..t {
        for (s, row) in rows.chunks_exact_mut(width).enumerate() {
            let at = (s * t + step) * f;
            row[..f].copy_from_slice(&xs[at..at + f]);
        }
        {
            let a: ArrayView2<'_, f32> = mat(OP, rows, n, width)?;
            let mut z = mat_mut(OP, &mut cache.zrec[..n * gu], n, gu)?;
            gemm(OP, 1.0, &a, &weights, 0.0, &mut z)?;
        }
        let z = &cache.zrec[..n * gu];
        vectorized(
            #[inline(always)]
            || {
                for s in 0..n {
                    let h = &mut rows[s * width + f..(s + 1) * width];
                    let c = &mut cell[s * u..(s + 1) * u];
                    gates(&z[s * gu..(s + 1) * gu], bias, c, h);
                    let at = if return_sequences {
                        (s * t + step) * u
                    } else {
                        s * u
                    };
                    if return_sequences || step + 1 == t {
                        outs[at..at + u].copy_from_slice(h);
                    }
                }
            },
        );
    }
    Ok(())
}

/// One sample's step: `i, f, o = σ(z + b)`, `g = tanh(z + b)` per block, `c ← f⊙c + i⊙g`,
/// `h ← o⊙tanh(c)`.
#[inline(always)]
fn gates(z: &[f32], bias: &[f32], c: &mut [f32], h: &mut [f32]) {
    let u = c.len();
    let (zi, rest) = z.split_at(u);
    let (zf, rest) = rest.split_at(u);
    let (zg, zo) = rest.split_at(u);
    let (bi, rest) = bias.split_at(u);
    let (bf, rest) = rest.split_at(u);
    let (bg, bo) = rest.split_at(u);
    let (zo, bo, h) = (&zo[..u], &bo[..u], &mut h[..u]);
    for k in 0..u {
        let i = fastmath::sigmoid(zi[k] + bi[k]);
        let fg = fastmath::sigmoid(zf[k] + bf[k]);
        let g = fastmath::tanh(zg[k] + bg[k]);
        let o = fastmath::sigmoid(zo[k] + bo[k]);
        let ck = fg * c[k] + i * g;
        c[k] = ck;
        h[k] = o * fastmath::tanh(ck);
    }
}
