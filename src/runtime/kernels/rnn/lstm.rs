//! LSTM cell (Keras gate order i, f, c, o; sigmoid gates, tanh cell):
//! `c_t = f⊙c_{t−1} + i⊙g`, `h_t = o⊙tanh(c_t)`. `gates` keeps the activated i, f, g, o;
//! `aux` keeps `tanh(c_t)`; `c_prev` keeps `c_{t−1}`.
//!
//! Each loop runs over contiguous slices with [`fastmath`] activations, so it vectorizes.

use super::{RnnCache, RnnDims};
use crate::runtime::kernels::fastmath;

/// Element-wise forward of step `t` (the driver has put `h_{t−1}·U` in `zrec`).
pub(super) fn forward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 4 * u;
        let gates = &mut c.gates[grow..grow + 4 * u];
        let xw = &c.xw[grow..grow + 4 * u];
        let zrec = &c.zrec[n * 4 * u..(n + 1) * 4 * u];
        for ((g, &a), &b) in gates.iter_mut().zip(xw).zip(zrec) {
            *g = a + b;
        }
        let (ifg, o) = gates.split_at_mut(3 * u);
        let (i_f, g) = ifg.split_at_mut(2 * u);
        fastmath::sigmoid_in_place(i_f);
        fastmath::tanh_in_place(g);
        fastmath::sigmoid_in_place(o);
        let (i, f) = i_f.split_at(u);
        let aux = &mut c.aux[row..row + u];
        let c_prev = &c.c_prev[row..row + u];
        for k in 0..u {
            aux[k] = f[k] * c_prev[k] + i[k] * g[k];
        }
        if t + 1 < d.t {
            c.c_prev[row + u..row + 2 * u].copy_from_slice(aux);
        }
        fastmath::tanh_in_place(aux);
        let h_new = &mut c.h_new[n * u..(n + 1) * u];
        for ((h, &ok), &tc) in h_new.iter_mut().zip(o.iter()).zip(aux.iter()) {
            *h = ok * tc;
        }
    }
}

/// Backward of step `t`: pre-activation gradients into `dz_in`, `dc` carried, direct `dh` zero.
pub(super) fn backward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 4 * u;
        let gates = &c.gates[grow..grow + 4 * u];
        let (i, rest) = gates.split_at(u);
        let (f, rest) = rest.split_at(u);
        let (g, o) = rest.split_at(u);
        let tc = &c.aux[row..row + u];
        let c_prev = &c.c_prev[row..row + u];
        let dz = &mut c.dz_in[grow..grow + 4 * u];
        let (dzi, rest) = dz.split_at_mut(u);
        let (dzf, rest) = rest.split_at_mut(u);
        let (dzg, dzo) = rest.split_at_mut(u);
        let dh = &mut c.dh[n * u..(n + 1) * u];
        let dc = &mut c.dc[n * u..(n + 1) * u];
        for k in 0..u {
            let dcell = dc[k] + dh[k] * o[k] * (1.0 - tc[k] * tc[k]);
            dzi[k] = dcell * g[k] * i[k] * (1.0 - i[k]);
            dzf[k] = dcell * c_prev[k] * f[k] * (1.0 - f[k]);
            dzg[k] = dcell * i[k] * (1.0 - g[k] * g[k]);
            dzo[k] = dh[k] * tc[k] * o[k] * (1.0 - o[k]);
            dc[k] = dcell * f[k];
            dh[k] = 0.0;
        }
    }
}
