//! LSTM cell (Keras gate order i, f, c, o; sigmoid gates, tanh cell):
//! `c_t = f⊙c_{t−1} + i⊙g`, `h_t = o⊙tanh(c_t)`. `gates` keeps the activated i, f, g, o;
//! `aux` keeps `tanh(c_t)`; `c_prev` keeps `c_{t−1}`.

use super::{RnnCache, RnnDims};
use crate::runtime::kernels::activation::sigmoid_scalar as sigmoid;

/// Element-wise forward of step `t` (the driver has put `h_{t−1}·U` in `zrec`).
pub(super) fn forward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 4 * u;
        for k in 0..u {
            let pre = |gate: usize| c.xw[grow + gate * u + k] + c.zrec[n * 4 * u + gate * u + k];
            let (i, f, g, o) = (
                sigmoid(pre(0)),
                sigmoid(pre(1)),
                pre(2).tanh(),
                sigmoid(pre(3)),
            );
            let cell = f * c.c_prev[row + k] + i * g;
            let tc = cell.tanh();
            c.gates[grow + k] = i;
            c.gates[grow + u + k] = f;
            c.gates[grow + 2 * u + k] = g;
            c.gates[grow + 3 * u + k] = o;
            c.aux[row + k] = tc;
            c.h_new[n * u + k] = o * tc;
            if t + 1 < d.t {
                c.c_prev[row + u + k] = cell;
            }
        }
    }
}

/// Backward of step `t`: pre-activation gradients into `dz_in`, `dc` carried, direct `dh` zero.
pub(super) fn backward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 4 * u;
        for k in 0..u {
            let (i, f, g, o) = (
                c.gates[grow + k],
                c.gates[grow + u + k],
                c.gates[grow + 2 * u + k],
                c.gates[grow + 3 * u + k],
            );
            let tc = c.aux[row + k];
            let dh = c.dh[n * u + k];
            let dcell = c.dc[n * u + k] + dh * o * (1.0 - tc * tc);
            c.dz_in[grow + k] = dcell * g * i * (1.0 - i);
            c.dz_in[grow + u + k] = dcell * c.c_prev[row + k] * f * (1.0 - f);
            c.dz_in[grow + 2 * u + k] = dcell * i * (1.0 - g * g);
            c.dz_in[grow + 3 * u + k] = dh * tc * o * (1.0 - o);
            c.dc[n * u + k] = dcell * f;
            c.dh[n * u + k] = 0.0;
        }
    }
}
