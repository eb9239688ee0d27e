//! SimpleRNN cell: `h_t = tanh(x_t·W + b + h_{t−1}·U)`; `aux` keeps `h_t` for backward.

use super::{RnnCache, RnnDims};

/// Element-wise forward of step `t` (the driver has put `h_{t−1}·U` in `zrec`).
pub(super) fn forward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    for n in 0..d.n {
        let row = (n * d.t + t) * d.u;
        for k in 0..d.u {
            let h = (c.xw[row + k] + c.zrec[n * d.u + k]).tanh();
            c.aux[row + k] = h;
            c.h_new[n * d.u + k] = h;
        }
    }
}

/// Backward of step `t`: `dz = dh·(1 − h²)`; the direct part of `dh_{t−1}` is zero.
pub(super) fn backward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    for n in 0..d.n {
        let row = (n * d.t + t) * d.u;
        for k in 0..d.u {
            let h = c.aux[row + k];
            c.dz_in[row + k] = c.dh[n * d.u + k] * (1.0 - h * h);
            c.dh[n * d.u + k] = 0.0;
        }
    }
}
