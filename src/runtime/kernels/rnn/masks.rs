//! Keras's recurrent dropout in the training driver, and `go_backwards`' reversal.
//!
//! A sample's masks hold for every step of its sequence (Keras draws them once per call). The
//! input masks `[N, c·F]` scale the features before the input projection: with one mask
//! (`c = 1`) the projection stays one GEMM over the masked copy; with one per gate
//! (`c = G`, Keras when `recurrent_dropout` is set) each gate block is its own GEMM. The state
//! masks `[N, G·U]` scale `h_{t−1}` per gate block before its product with that block of the
//! recurrent kernel. Backward applies the same masks to the gradients flowing back through
//! those products. Without masks every function here is the one GEMM the driver always ran.

use ndarray::{s, ArrayView2, ArrayViewMut2};

use super::{RnnCache, RnnCell, RnnDims, OP};
use crate::runtime::kernels::error::{shape_err, KernelResult};
use crate::runtime::kernels::linalg::{ensure_len, gemm, gemm_rows, mat, mat_mut};
use crate::runtime::kernels::panels::Panels;

/// `dst[n·T + t] = src[n·T + t] ⊙ mask[n, block g]` for rows of `w` values (mask `[N, c·w]`).
fn mask_rows(
    src: &[f32],
    mask: &[f32],
    (n, t, w): (usize, usize, usize),
    c: usize,
    g: usize,
    dst: &mut [f32],
) {
    for s in 0..n {
        let m = &mask[(s * c + g) * w..(s * c + g + 1) * w];
        for step in 0..t {
            let at = (s * t + step) * w;
            for ((d, &v), &k) in dst[at..at + w].iter_mut().zip(&src[at..at + w]).zip(m) {
                *d = v * k;
            }
        }
    }
}

/// Reverses the `T` rows of `w` values of every sample of `buf` (`[N, T, w]`) in place.
pub(super) fn reverse_steps(buf: &mut [f32], (n, t, w): (usize, usize, usize)) {
    for s in 0..n {
        let seq = &mut buf[s * t * w..(s + 1) * t * w];
        for step in 0..t / 2 {
            let (front, back) = seq.split_at_mut((t - 1 - step) * w);
            front[step * w..(step + 1) * w].swap_with_slice(&mut back[..w]);
        }
    }
}

/// The input projection `xw ← (x ⊙ m_g)·W_g` for each gate block `g` (one GEMM for all blocks
/// without masks or with one mask), the input bias not yet added.
pub(super) fn project_masked(
    c: &mut RnnCache,
    x: &[f32],
    d: &RnnDims,
    kernel: &ArrayView2<'_, f32>,
    gu: usize,
) -> KernelResult<()> {
    let rows = d.n * d.t;
    let masks = c.input_masks;
    let mut out = mat_mut(OP, &mut c.xw, rows, gu)?;
    if masks == 0 {
        let xm = mat(OP, x, rows, d.f)?;
        return gemm(OP, 1.0, &xm, kernel, 0.0, &mut out);
    }
    let block = gu / masks;
    ensure_len(&mut c.masked, rows * d.f);
    for g in 0..masks {
        mask_rows(x, &c.input_mask, (d.n, d.t, d.f), masks, g, &mut c.masked);
        let xm = mat(OP, &c.masked, rows, d.f)?;
        let cols = s![.., g * block..(g + 1) * block];
        gemm(
            OP,
            1.0,
            &xm,
            &kernel.slice(cols),
            0.0,
            &mut out.slice_mut(cols),
        )?;
    }
    Ok(())
}

/// The input side of backward: `dW_g = (x ⊙ m_g)ᵀ·dZ_g` and `dx = Σ_g (dZ_g·W_gᵀ) ⊙ m_g` (in
/// processing order), `dz_in` being `[N·T, G·U]`.
pub(super) fn input_grads(
    c: &mut RnnCache,
    x: &[f32],
    d: &RnnDims,
    kernel: &ArrayView2<'_, f32>,
    gu: usize,
    dx: &mut [f32],
    dkernel: &mut ArrayViewMut2<'_, f32>,
) -> KernelResult<()> {
    let rows = d.n * d.t;
    let masks = c.input_masks;
    let dz_in = mat(OP, &c.dz_in, rows, gu)?;
    let mut dxm = mat_mut(OP, dx, rows, d.f)?;
    if masks == 0 {
        let xm = mat(OP, x, rows, d.f)?;
        gemm(OP, 1.0, &dz_in, &kernel.t(), 0.0, &mut dxm)?;
        return gemm(OP, 1.0, &xm.t(), &dz_in, 0.0, dkernel);
    }
    let block = gu / masks;
    ensure_len(&mut c.masked, rows * d.f);
    ensure_len(&mut c.masked_grad, rows * d.f);
    dxm.fill(0.0);
    for g in 0..masks {
        let cols = s![.., g * block..(g + 1) * block];
        mask_rows(x, &c.input_mask, (d.n, d.t, d.f), masks, g, &mut c.masked);
        let xm = mat(OP, &c.masked, rows, d.f)?;
        gemm(
            OP,
            1.0,
            &xm.t(),
            &dz_in.slice(cols),
            0.0,
            &mut dkernel.slice_mut(cols),
        )?;
        {
            let mut part = mat_mut(OP, &mut c.masked_grad, rows, d.f)?;
            gemm(
                OP,
                1.0,
                &dz_in.slice(cols),
                &kernel.slice(cols).t(),
                0.0,
                &mut part,
            )?;
        }
        // dx += part ⊙ m_g, the rows of a sample sharing its mask.
        let dx = dxm
            .as_slice_mut()
            .ok_or_else(|| shape_err(OP, "dx is not contiguous"))?;
        for (s, (dx, part)) in dx
            .chunks_exact_mut(d.t * d.f)
            .zip(c.masked_grad.chunks_exact(d.t * d.f))
            .enumerate()
        {
            let m = &c.input_mask[(s * masks + g) * d.f..(s * masks + g + 1) * d.f];
            for (orow, prow) in dx.chunks_exact_mut(d.f).zip(part.chunks_exact(d.f)) {
                for ((o, &v), &k) in orow.iter_mut().zip(prow).zip(m) {
                    *o += v * k;
                }
            }
        }
    }
    Ok(())
}

/// The state mask of gate block `g` for sample `s` (`[U]`), if the run has state masks.
pub(super) fn state_mask<'a>(
    c: &'a RnnCache,
    d: &RnnDims,
    cell: RnnCell,
    s: usize,
    g: usize,
) -> Option<&'a [f32]> {
    let gu = d.u * cell.gates();
    c.recurrent_mask
        .get(s * gu + g * d.u..s * gu + (g + 1) * d.u)
}

/// `zrec[:, blocks] ← (h_{t−1} ⊙ m_g)·U_g` for the driver's gate blocks of step `t`.
pub(super) fn recurrent_product(
    c: &mut RnnCache,
    cell: RnnCell,
    d: &RnnDims,
    t: usize,
    (recurrent, panels): (&ArrayView2<'_, f32>, &Panels<'_>),
) -> KernelResult<()> {
    let (gu, u) = (d.u * cell.gates(), d.u);
    let width = cell.driver_blocks() * u;
    let hp = c
        .h_prev
        .get(t * u..)
        .ok_or_else(|| shape_err(OP, "step outside buffer"))?;
    if c.recurrent_mask.is_empty() && panels.gemm(hp, (d.n, d.t * u), false, &mut c.zrec, gu) {
        return Ok(());
    }
    let mut zrec = mat_mut(OP, &mut c.zrec, d.n, gu)?;
    if c.recurrent_mask.is_empty() {
        let (w, mut z) = (
            recurrent.slice(s![.., ..width]),
            zrec.slice_mut(s![.., ..width]),
        );
        return gemm_rows(OP, hp, (d.n, u, d.t * u), &w, 0.0, &mut z);
    }
    ensure_len(&mut c.masked_state, d.n * u);
    for g in 0..cell.driver_blocks() {
        for s in 0..d.n {
            let m = &c.recurrent_mask[s * gu + g * u..s * gu + (g + 1) * u];
            let h = &hp[s * d.t * u..s * d.t * u + u];
            for ((o, &v), &k) in c.masked_state[s * u..(s + 1) * u].iter_mut().zip(h).zip(m) {
                *o = v * k;
            }
        }
        let hm = mat(OP, &c.masked_state, d.n, u)?;
        let cols = s![.., g * u..(g + 1) * u];
        gemm(
            OP,
            1.0,
            &hm,
            &recurrent.slice(cols),
            0.0,
            &mut zrec.slice_mut(cols),
        )?;
    }
    Ok(())
}

/// The driver's gate blocks of `recurrent` (`[U, G·U]`) transposed row-major into `out`
/// (`[B·U, U]`, `B` = the driver's blocks): [`recurrent_grad`]'s right-hand side, made once per
/// backward call instead of at every step.
pub(super) fn transpose_driver_blocks(
    cell: RnnCell,
    d: &RnnDims,
    recurrent: &ArrayView2<'_, f32>,
    out: &mut Vec<f32>,
) -> KernelResult<()> {
    let (u, width) = (d.u, cell.driver_blocks() * d.u);
    if recurrent.dim().0 != u || recurrent.dim().1 < width {
        return Err(shape_err(OP, "recurrent kernel does not fit the state"));
    }
    out.clear();
    out.extend((0..width).flat_map(|k| (0..u).map(move |j| recurrent[[j, k]])));
    Ok(())
}

/// `dh_{t−1} += Σ_g (dZ_rec,g·U_gᵀ) ⊙ m_g` over the driver's gate blocks of step `t`, with
/// `recurrent_t` the blocks' transpose from [`transpose_driver_blocks`] (`[B·U, U]`).
pub(super) fn recurrent_grad(
    c: &mut RnnCache,
    cell: RnnCell,
    d: &RnnDims,
    t: usize,
    (recurrent_t, panels_t): (&[f32], &Panels<'_>),
) -> KernelResult<()> {
    let (gu, u) = (d.u * cell.gates(), d.u);
    let width = cell.driver_blocks() * u;
    let dz_rec = if cell.separate_recurrent_grads() {
        &c.dz_rec
    } else {
        &c.dz_in
    };
    let dzt = dz_rec
        .get(t * gu..)
        .ok_or_else(|| shape_err(OP, "step outside buffer"))?;
    if c.recurrent_mask.is_empty() && panels_t.gemm(dzt, (d.n, d.t * gu), true, &mut c.dh, u) {
        return Ok(());
    }
    let wt = mat(OP, recurrent_t, width, u)?;
    if c.recurrent_mask.is_empty() {
        let mut dh = mat_mut(OP, &mut c.dh, d.n, u)?;
        return gemm_rows(OP, dzt, (d.n, width, d.t * gu), &wt, 1.0, &mut dh);
    }
    ensure_len(&mut c.masked_state, d.n * u);
    for g in 0..cell.driver_blocks() {
        {
            let mut part = mat_mut(OP, &mut c.masked_state, d.n, u)?;
            let w = wt.slice(s![g * u..(g + 1) * u, ..]);
            gemm_rows(OP, &dzt[g * u..], (d.n, u, d.t * gu), &w, 0.0, &mut part)?;
        }
        for s in 0..d.n {
            let m = &c.recurrent_mask[s * gu + g * u..s * gu + (g + 1) * u];
            let part = &c.masked_state[s * u..(s + 1) * u];
            for ((o, &v), &k) in c.dh[s * u..(s + 1) * u].iter_mut().zip(part).zip(m) {
                *o += v * k;
            }
        }
    }
    Ok(())
}

/// `dU_g = Σ_t (h_{t−1} ⊙ m_g)ᵀ·dZ_rec,g` over the driver's gate blocks (one GEMM without
/// masks); `dz_rec` is `[N·T, G·U]`.
pub(super) fn recurrent_kernel_grad(
    c: &mut RnnCache,
    cell: RnnCell,
    d: &RnnDims,
    drecurrent: &mut ArrayViewMut2<'_, f32>,
) -> KernelResult<()> {
    let (gu, u, rows) = (d.u * cell.gates(), d.u, d.n * d.t);
    let width = cell.driver_blocks() * u;
    let dz_rec = if cell.separate_recurrent_grads() {
        &c.dz_rec
    } else {
        &c.dz_in
    };
    let dz = mat(OP, dz_rec, rows, gu)?;
    if c.recurrent_mask.is_empty() {
        let hp = mat(OP, &c.h_prev, rows, u)?;
        let cols = s![.., ..width];
        return gemm(
            OP,
            1.0,
            &hp.t(),
            &dz.slice(cols),
            0.0,
            &mut drecurrent.slice_mut(cols),
        );
    }
    let mut masked = std::mem::take(&mut c.masked_grad);
    ensure_len(&mut masked, rows * u);
    for g in 0..cell.driver_blocks() {
        mask_rows(
            &c.h_prev,
            &c.recurrent_mask,
            (d.n, d.t, u),
            cell.gates(),
            g,
            &mut masked,
        );
        let hm = mat(OP, &masked, rows, u)?;
        let cols = s![.., g * u..(g + 1) * u];
        gemm(
            OP,
            1.0,
            &hm.t(),
            &dz.slice(cols),
            0.0,
            &mut drecurrent.slice_mut(cols),
        )?;
    }
    c.masked_grad = masked;
    Ok(())
}
