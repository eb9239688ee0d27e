//! GRU cell, Keras `reset_after=True` (gate order z, r, h):
//! `z = σ(x_z + r_z)`, `r = σ(x_r + r_r)`, `ĥ = tanh(x_h + r⊙r_h)`, `h_t = z⊙h_{t−1} + (1−z)⊙ĥ`,
//! where `x_· = x_t·W + b_in` and `r_· = h_{t−1}·U + b_rec`. `gates` keeps z, r, ĥ; `aux`
//! keeps `r_h` (needed for the reset gate's gradient).

use super::{RnnCache, RnnDims};
use crate::runtime::kernels::fastmath;

/// Element-wise forward of step `t` (the driver has put `h_{t−1}·U` in `zrec`).
pub(super) fn forward_step(c: &mut RnnCache, d: &RnnDims, t: usize, rec_bias: &[f32]) {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 3 * u;
        let zrec = &c.zrec[n * 3 * u..(n + 1) * 3 * u];
        let xw = &c.xw[grow..grow + 3 * u];
        let gates = &mut c.gates[grow..grow + 3 * u];
        let rh = &mut c.aux[row..row + u];
        // z and r: σ(x + rec + b_rec); the h part of the recurrent side is kept in `aux`.
        for j in 0..2 * u {
            gates[j] = xw[j] + (zrec[j] + rec_bias[j]);
        }
        for k in 0..u {
            rh[k] = zrec[2 * u + k] + rec_bias[2 * u + k];
        }
        let (zr, hh) = gates.split_at_mut(2 * u);
        fastmath::sigmoid_in_place(zr);
        let (z, r) = zr.split_at(u);
        for k in 0..u {
            hh[k] = xw[2 * u + k] + r[k] * rh[k];
        }
        fastmath::tanh_in_place(hh);
        let h_prev = &c.h_prev[row..row + u];
        let h_new = &mut c.h_new[n * u..(n + 1) * u];
        for k in 0..u {
            h_new[k] = z[k] * h_prev[k] + (1.0 - z[k]) * hh[k];
        }
    }
}

/// Backward of step `t`: input-side and recurrent-side pre-activation gradients; the direct
/// part `dh·z` of `dh_{t−1}` is left in `dh`.
pub(super) fn backward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 3 * u;
        for k in 0..u {
            let (z, r, hh) = (
                c.gates[grow + k],
                c.gates[grow + u + k],
                c.gates[grow + 2 * u + k],
            );
            let rh = c.aux[row + k];
            let dh = c.dh[n * u + k];
            let dz = dh * (c.h_prev[row + k] - hh) * z * (1.0 - z);
            let dah = dh * (1.0 - z) * (1.0 - hh * hh);
            let dr = dah * rh * r * (1.0 - r);
            c.dz_in[grow + k] = dz;
            c.dz_in[grow + u + k] = dr;
            c.dz_in[grow + 2 * u + k] = dah;
            c.dz_rec[grow + k] = dz;
            c.dz_rec[grow + u + k] = dr;
            c.dz_rec[grow + 2 * u + k] = dah * r;
            c.dh[n * u + k] = dh * z;
        }
    }
}
