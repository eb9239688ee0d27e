//! GRU cell, Keras `reset_after=False` (gate order z, r, h; one bias `[3U]`):
//! `z = σ(x_z + h_{t−1}·U_z)`, `r = σ(x_r + h_{t−1}·U_r)`, `ĥ = tanh(x_h + (r⊙h_{t−1})·U_h)`,
//! `h_t = z⊙h_{t−1} + (1−z)⊙ĥ`, with `x_· = x_t·W + b`. The driver multiplies `h_{t−1}` by
//! the z and r blocks of `U`; this cell multiplies `r⊙h_{t−1}` by `U_h` itself. With
//! recurrent dropout the state is masked per block (`r⊙(h_{t−1}⊙m_h)` for the candidate), and
//! the update `z⊙h_{t−1}` reads the unmasked state, as Keras. `gates` keeps z, r, ĥ; `aux`
//! keeps `r⊙h_{t−1}⊙m_h`, the candidate product's left-hand side, for `U_h`'s gradient.

use ndarray::{s, ArrayView2, ArrayViewMut2};

use super::masks::state_mask;
use super::{RnnCache, RnnCell, RnnDims, OP};
use crate::runtime::kernels::error::{shape_err, KernelResult};
use crate::runtime::kernels::fastmath;
use crate::runtime::kernels::linalg::{ensure_len, gemm, gemm_rows, mat, mat_mut};

const CELL: RnnCell = RnnCell::GruResetBefore;

/// The state mask of the candidate block for sample `n`, or 1.
fn mask_h(c: &RnnCache, d: &RnnDims, n: usize, k: usize) -> f32 {
    state_mask(c, d, CELL, n, 2).map_or(1.0, |m| m[k])
}

/// Forward of step `t` (the driver has put the z and r blocks of `h_{t−1}·U` in `zrec`).
pub(super) fn forward_step(
    c: &mut RnnCache,
    d: &RnnDims,
    t: usize,
    recurrent: &ArrayView2<'_, f32>,
) -> KernelResult<()> {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 3 * u;
        for j in 0..2 * u {
            c.gates[grow + j] = c.xw[grow + j] + c.zrec[n * 3 * u + j];
        }
        fastmath::sigmoid_in_place(&mut c.gates[grow..grow + 2 * u]);
        for k in 0..u {
            let r = c.gates[grow + u + k];
            c.aux[row + k] = r * (c.h_prev[row + k] * mask_h(c, d, n, k));
        }
    }
    {
        let aux = c
            .aux
            .get(t * u..)
            .ok_or_else(|| shape_err(OP, "step outside buffer"))?;
        let mut zrec = mat_mut(OP, &mut c.zrec, d.n, 3 * u)?;
        let cols = s![.., 2 * u..];
        gemm_rows(
            OP,
            aux,
            (d.n, u, d.t * u),
            &recurrent.slice(cols),
            0.0,
            &mut zrec.slice_mut(cols),
        )?;
    }
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 3 * u;
        for k in 0..u {
            c.gates[grow + 2 * u + k] = c.xw[grow + 2 * u + k] + c.zrec[n * 3 * u + 2 * u + k];
        }
        fastmath::tanh_in_place(&mut c.gates[grow + 2 * u..grow + 3 * u]);
        for k in 0..u {
            let (z, hh) = (c.gates[grow + k], c.gates[grow + 2 * u + k]);
            c.h_new[n * u + k] = z * c.h_prev[row + k] + (1.0 - z) * hh;
        }
    }
    Ok(())
}

/// Backward of step `t`: the pre-activation gradients (`dz_in`, which the recurrent side
/// shares), and in `dh` the parts of `dh_{t−1}` that do not go through the driver's blocks:
/// `dh·z` and the candidate's `((dĥ·U_hᵀ)⊙r⊙m_h)`.
pub(super) fn backward_step(
    c: &mut RnnCache,
    d: &RnnDims,
    t: usize,
    recurrent: &ArrayView2<'_, f32>,
) -> KernelResult<()> {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 3 * u;
        for k in 0..u {
            let (z, hh) = (c.gates[grow + k], c.gates[grow + 2 * u + k]);
            let dh = c.dh[n * u + k];
            c.dz_in[grow + k] = dh * (c.h_prev[row + k] - hh) * z * (1.0 - z);
            c.dz_in[grow + 2 * u + k] = dh * (1.0 - z) * (1.0 - hh * hh);
            c.dh[n * u + k] = dh * z;
        }
    }
    ensure_len(&mut c.masked_state, d.n * u);
    {
        let dah = c
            .dz_in
            .get(t * 3 * u + 2 * u..)
            .ok_or_else(|| shape_err(OP, "step outside buffer"))?;
        let mut drh = mat_mut(OP, &mut c.masked_state, d.n, u)?;
        let w = recurrent.slice(s![.., 2 * u..]);
        gemm_rows(OP, dah, (d.n, u, d.t * 3 * u), &w.t(), 0.0, &mut drh)?;
    }
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 3 * u;
        for k in 0..u {
            let r = c.gates[grow + u + k];
            let m = mask_h(c, d, n, k);
            let drh = c.masked_state[n * u + k];
            c.dz_in[grow + u + k] = drh * (c.h_prev[row + k] * m) * r * (1.0 - r);
            c.dh[n * u + k] += drh * r * m;
        }
    }
    Ok(())
}

/// `dU_h = Σ_t (r⊙h_{t−1}⊙m_h)ᵀ·dĥ`: the candidate block of the recurrent kernel's gradient.
pub(super) fn candidate_kernel_grad(
    c: &RnnCache,
    d: &RnnDims,
    drecurrent: &mut ArrayViewMut2<'_, f32>,
) -> KernelResult<()> {
    let (u, rows) = (d.u, d.n * d.t);
    let aux = mat(OP, &c.aux, rows, u)?;
    let dz = mat(OP, &c.dz_in, rows, 3 * u)?;
    let cols = s![.., 2 * u..];
    gemm(
        OP,
        1.0,
        &aux.t(),
        &dz.slice(cols),
        0.0,
        &mut drecurrent.slice_mut(cols),
    )
}
