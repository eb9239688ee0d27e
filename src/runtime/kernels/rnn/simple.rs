//! SimpleRNN cell: `h_t = tanh(x_t·W + b + h_{t−1}·U)`; `aux` keeps `h_t` for backward.

use super::{RnnCache, RnnDims};
use crate::runtime::kernels::fastmath;

/// Element-wise forward of step `t` (the driver has put `h_{t−1}·U` in `zrec`).
pub(super) fn forward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let aux = &mut c.aux[row..row + u];
        let xw = &c.xw[row..row + u];
        let zrec = &c.zrec[n * u..(n + 1) * u];
        for ((h, &a), &b) in aux.iter_mut().zip(xw).zip(zrec) {
            *h = a + b;
        }
        fastmath::tanh_in_place(aux);
        c.h_new[n * u..(n + 1) * u].copy_from_slice(aux);
    }
}

/// Backward of step `t`: `dz = dh·(1 − h²)`; the direct part of `dh_{t−1}` is zero.
pub(super) fn backward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let aux = &c.aux[row..row + u];
        let dz = &mut c.dz_in[row..row + u];
        let dh = &mut c.dh[n * u..(n + 1) * u];
        for ((z, g), &h) in dz.iter_mut().zip(dh.iter_mut()).zip(aux) {
            *z = *g * (1.0 - h * h);
            *g = 0.0;
        }
    }
}
