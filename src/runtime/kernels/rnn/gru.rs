//! GRU cell, Keras `reset_after=True` (gate order z, r, h):
//! `z = σ(x_z + r_z)`, `r = σ(x_r + r_r)`, `ĥ = tanh(x_h + r⊙r_h)`, `h_t = z⊙h_{t−1} + (1−z)⊙ĥ`,
//! where `x_· = x_t·W + b_in` and `r_· = h_{t−1}·U + b_rec`. `gates` keeps z, r, ĥ; `aux`
//! keeps `r_h` (needed for the reset gate's gradient).

use super::{RnnCache, RnnDims};
use crate::runtime::kernels::activation::sigmoid_scalar as sigmoid;

/// Element-wise forward of step `t` (the driver has put `h_{t−1}·U` in `zrec`).
pub(super) fn forward_step(c: &mut RnnCache, d: &RnnDims, t: usize, rec_bias: &[f32]) {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 3 * u;
        for k in 0..u {
            let rec = |gate: usize| c.zrec[n * 3 * u + gate * u + k] + rec_bias[gate * u + k];
            let rh = rec(2);
            let z = sigmoid(c.xw[grow + k] + rec(0));
            let r = sigmoid(c.xw[grow + u + k] + rec(1));
            let hh = (c.xw[grow + 2 * u + k] + r * rh).tanh();
            c.gates[grow + k] = z;
            c.gates[grow + u + k] = r;
            c.gates[grow + 2 * u + k] = hh;
            c.aux[row + k] = rh;
            c.h_new[n * u + k] = z * c.h_prev[row + k] + (1.0 - z) * hh;
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
