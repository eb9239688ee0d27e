//! The LSTM forward for inference only: nothing is kept for a backward pass, so each timestep
//! works on a few small buffers that stay in cache instead of `[N, T, ·]` arrays.
//!
//! Per timestep, `[x_t | h_{t−1}]` (`N × (F+U)`) is multiplied by the stacked weights
//! `[W; U]` (`(F+U) × 4U`) in one GEMM (a longer sum per tile than two products, and no
//! `X·W` array for every timestep), then one fused pass per sample adds the bias, applies the
//! gate activations, updates `c` and writes `h` both into the next step's left-hand rows and
//! into the output; that pass is [`simd_act::lstm_cells`] (AVX2 + FMA intrinsics) where the CPU
//! has them, else [`gates`] (portable fastmath). The weights are packed once per call into
//! panels as wide as the GEMM's tile ([`Panels`]) for the step's product. Keras semantics and gate order
//! (i, f, c, o) as in [`super::lstm`]; the sums are taken in another order than the training
//! forward's (`x·W` and `h·U` in one chain), and the cell divides fewer times (see [`simd_act`]), so
//! the two agree to f32 rounding, not bit for bit.
//!
//! Over token ids ([`super::rnn_infer_tokens`]) the left-hand rows are `h_{t−1}` alone and the
//! weights `U` alone (`K = U`): the input side `x_t·W + b` is a row of the projection table,
//! which the fused pass adds in place of the bias.

#![allow(clippy::inline_always)]

use ndarray::{ArrayView2, ArrayView3, ArrayViewMutD};

use super::{RnnCache, RnnDims, RnnParams, RnnTokenParams, OP};
use crate::runtime::kernels::error::{expect_shape, shape_err, KernelResult};
use crate::runtime::kernels::fastmath;
use crate::runtime::kernels::linalg::{ensure_len, flat, flat_mut, gemm, mat, mat_mut};
use crate::runtime::kernels::panels::Panels;
use crate::runtime::kernels::simd_act::{self, Addend, Rows, StepCells};
use crate::runtime::kernels::simd_train::vectorized;

/// Where a step's input-side gate sums come from.
#[derive(Clone, Copy)]
enum Input<'a> {
    /// Features `[N, T, F]` (flat): each step copies `x_t` into the left of the `[x_t | h]`
    /// rows, multiplies them by the stacked `[W; U]`, and adds `bias`.
    Features {
        xs: &'a [f32],
        f: usize,
        bias: &'a [f32],
    },
    /// Token rows `[N·T]` of a `[V, 4U]` projection table (input bias inside): each step
    /// multiplies `h` by `U` alone and adds row `rows[s·T + t]` for sample `s`.
    Tokens {
        rows: &'a [usize],
        projection: &'a [f32],
    },
}

impl Input<'_> {
    /// Features per step on the left of each GEMM row (0 for tokens).
    fn features(self) -> usize {
        match self {
            Input::Features { f, .. } => f,
            Input::Tokens { .. } => 0,
        }
    }
}

/// LSTM inference of `x: [N, T, F]` into `out` (`[N, T, U]` with `return_sequences`, else
/// `[N, U]`), with the scratch buffers of `cache`.
pub(super) fn lstm_infer(
    x: ArrayView3<'_, f32>,
    p: &RnnParams<'_>,
    return_sequences: bool,
    cache: &mut RnnCache,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let (n, t, f) = x.dim();
    let (u, gu) = p.recurrent.dim();
    if gu != 4 * u || p.kernel.dim() != (f, gu) || p.bias.len() != gu {
        return Err(shape_err(OP, "LSTM weights do not fit the input"));
    }
    let width = f + u;
    // The stacked weights `[W; U]` live in the `xw` scratch.
    let stacked = &mut cache.xw;
    ensure_len(stacked, width * gu);
    let (kernel, recurrent) = (
        flat(OP, "kernel", &p.kernel)?,
        flat(OP, "recurrent", &p.recurrent)?,
    );
    stacked[..f * gu].copy_from_slice(kernel);
    stacked[f * gu..width * gu].copy_from_slice(recurrent);
    let input = Input::Features {
        xs: flat(OP, "x", &x)?,
        f,
        bias: flat(OP, "bias", &p.bias)?,
    };
    let weights = mat(OP, &cache.xw[..width * gu], width, gu)?;
    let scratch = Scratch {
        lhs: &mut cache.h_prev,
        z: &mut cache.zrec,
        cell: &mut cache.c_prev,
        panels: &mut cache.panels,
    };
    cache.config = None;
    steps(input, (n, t, u), &weights, return_sequences, scratch, out)
}

/// LSTM inference over token ids whose rows of `p.projection` (`[V, 4U]`, input bias inside)
/// [`super::rnn_infer_tokens`] has put in `cache.token_rows` (`[N·T]`, all in range).
pub(super) fn lstm_infer_tokens(
    d: &RnnDims,
    p: &RnnTokenParams<'_>,
    return_sequences: bool,
    cache: &mut RnnCache,
    out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let (u, gu) = p.recurrent.dim();
    if gu != 4 * u || d.u != u || p.projection.dim().1 != gu || cache.token_rows.len() != d.n * d.t
    {
        return Err(shape_err(OP, "LSTM weights do not fit the tokens"));
    }
    let input = Input::Tokens {
        rows: &cache.token_rows,
        projection: flat(OP, "projection", &p.projection)?,
    };
    let weights = mat(OP, flat(OP, "recurrent", &p.recurrent)?, u, gu)?;
    let scratch = Scratch {
        lhs: &mut cache.h_prev,
        z: &mut cache.zrec,
        cell: &mut cache.c_prev,
        panels: &mut cache.panels,
    };
    cache.config = None;
    steps(
        input,
        (d.n, d.t, u),
        &weights,
        return_sequences,
        scratch,
        out,
    )
}

/// Rows (sequences) from which a step's product runs over the weights in panels.
const PANEL_ROWS: usize = 4;

/// The scratch buffers of [`steps`] (grown as needed): the GEMM's left-hand rows, its result,
/// the cell state, the weights in panels.
struct Scratch<'a> {
    lhs: &'a mut Vec<f32>,
    z: &'a mut Vec<f32>,
    cell: &'a mut Vec<f32>,
    panels: &'a mut Vec<f32>,
}

/// The recurrence of both entry points: per step one GEMM of the `[x_t | h]` rows (`h` alone
/// for tokens) by `weights`, then one fused pass per sample adding the input side (the bias,
/// or the token's projection row) and updating `c` and `h`.
fn steps(
    input: Input<'_>,
    (n, t, u): (usize, usize, usize),
    weights: &ArrayView2<'_, f32>,
    return_sequences: bool,
    scratch: Scratch<'_>,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let f = input.features();
    let width = f + u;
    let gu = 4 * u;
    if weights.dim() != (width, gu) {
        return Err(shape_err(OP, "LSTM weights do not fit the input"));
    }
    let want: &[usize] = if return_sequences {
        &[n, t, u]
    } else {
        &[n, u]
    };
    expect_shape(OP, "out", out.shape(), want)?;
    ensure_len(scratch.lhs, n * width);
    ensure_len(scratch.z, n * gu);
    ensure_len(scratch.cell, n * u);
    let lhs = &mut scratch.lhs[..n * width];
    lhs.fill(0.0);
    let cell = &mut scratch.cell[..n * u];
    cell.fill(0.0);
    let outs = flat_mut(OP, "out", &mut out)?;
    match input {
        Input::Features { xs, .. } if xs.len() != n * t * f => {
            return Err(shape_err(OP, "LSTM input size"));
        }
        Input::Tokens { rows, projection }
            if rows.iter().any(|&r| (r + 1) * gu > projection.len()) =>
        {
            return Err(shape_err(OP, "token row outside the projection"));
        }
        _ => {}
    }
    // A few rows' product is too small to pay for one GEMM call per panel: it runs as one call
    // on the row-major weights instead (the same bits either way).
    let panels = (n >= PANEL_ROWS).then(|| Panels::pack(weights, scratch.panels));
    for step in 0..t {
        if let Input::Features { xs, .. } = input {
            for (s, row) in lhs.chunks_exact_mut(width).enumerate() {
                let at = (s * t + step) * f;
                row[..f].copy_from_slice(&xs[at..at + f]);
            }
        }
        let packed = panels
            .as_ref()
            .is_some_and(|p| p.gemm(lhs, (n, width), false, &mut scratch.z[..n * gu], gu));
        if !packed {
            let a: ArrayView2<'_, f32> = mat(OP, lhs, n, width)?;
            let mut z = mat_mut(OP, &mut scratch.z[..n * gu], n, gu)?;
            gemm(OP, 1.0, &a, weights, 0.0, &mut z)?;
        }
        let z = &scratch.z[..n * gu];
        let write_out = return_sequences || step + 1 == t;
        let out_rows = write_out.then(|| Rows {
            data: &mut *outs,
            offset: if return_sequences { step * u } else { 0 },
            stride: if return_sequences { t * u } else { u },
        });
        let cells = StepCells {
            units: u,
            z,
            addend: match input {
                Input::Features { bias, .. } => Addend::Shared(bias),
                Input::Tokens { rows, projection } => Addend::Table {
                    table: projection,
                    index: rows,
                    first: step,
                    stride: t,
                },
            },
            c: &mut *cell,
            h: Rows {
                data: &mut *lhs,
                offset: f,
                stride: width,
            },
            out: out_rows,
        };
        if !simd_act::lstm_cells(cells) {
            portable_cells(
                input,
                (n, t, u),
                step,
                z,
                cell,
                lhs,
                write_out.then_some(&mut *outs),
                return_sequences,
            );
        }
    }
    Ok(())
}

/// A step's cells where [`simd_act::lstm_cells`] does not run: [`gates`] per sample, `h`
/// into the sample's left-hand row and, when `outs` is given, into its output row.
#[allow(clippy::too_many_arguments)]
fn portable_cells(
    input: Input<'_>,
    (n, t, u): (usize, usize, usize),
    step: usize,
    z: &[f32],
    cell: &mut [f32],
    lhs: &mut [f32],
    mut outs: Option<&mut [f32]>,
    return_sequences: bool,
) {
    let width = input.features() + u;
    let gu = 4 * u;
    vectorized(
        #[inline(always)]
        || {
            for s in 0..n {
                let h = &mut lhs[s * width + width - u..(s + 1) * width];
                let c = &mut cell[s * u..(s + 1) * u];
                let addend = match input {
                    Input::Features { bias, .. } => bias,
                    Input::Tokens { rows, projection } => {
                        let r = rows[s * t + step];
                        &projection[r * gu..(r + 1) * gu]
                    }
                };
                gates(&z[s * gu..(s + 1) * gu], addend, c, h);
                if let Some(outs) = outs.as_deref_mut() {
                    let at = if return_sequences {
                        (s * t + step) * u
                    } else {
                        s * u
                    };
                    outs[at..at + u].copy_from_slice(h);
                }
            }
        },
    );
}

/// One sample's step where [`simd_act::lstm_cells`] does not run (no AVX2 + FMA; the same
/// function to f32 rounding): `i, f, o = σ(z + b)`, `g = tanh(z + b)` per block,
/// `c ← f⊙c + i⊙g`, `h ← o⊙tanh(c)`; `b` is the bias, or a token's projection row (which
/// holds it).
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
