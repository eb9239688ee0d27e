//! LSTM cell (Keras gate order i, f, c, o; sigmoid gates, tanh cell):
//! `c_t = f⊙c_{t−1} + i⊙g`, `h_t = o⊙tanh(c_t)`. `gates` keeps the activated i, f, g, o;
//! `aux` keeps `tanh(c_t)`; `c_prev` keeps `c_{t−1}`.
//!
//! The forward cell is [`simd_act::lstm_cells_train`] (AVX2 + FMA intrinsics) where the CPU
//! has them; otherwise, and for backward, each loop runs over contiguous slices with
//! [`fastmath`] activations, so it vectorizes; the step functions run under [`vectorized`]
//! (AVX2 when the CPU has it, same bits as the baseline build). The two forward cells compute
//! the same function to f32 rounding, not bit for bit, so a machine without FMA trains to
//! slightly different numbers (as with `simd_gemm`); a given machine is deterministic.

#![allow(clippy::inline_always)]

use super::{RnnCache, RnnDims};
use crate::runtime::kernels::simd_train::vectorized;
use crate::runtime::kernels::{fastmath, simd_act};

/// `xs[i] ← σ(xs[i])`, inlined so that it is compiled for the caller's SIMD width.
#[inline(always)]
fn sigmoid_in_place(xs: &mut [f32]) {
    for v in xs {
        *v = fastmath::sigmoid(*v);
    }
}

/// `xs[i] ← tanh(xs[i])`, inlined like [`sigmoid_in_place`].
#[inline(always)]
fn tanh_in_place(xs: &mut [f32]) {
    for v in xs {
        *v = fastmath::tanh(*v);
    }
}

/// Element-wise forward of step `t` (the driver has put `h_{t−1}·U` in `zrec`).
pub(super) fn forward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    vectorized(
        #[inline(always)]
        || forward_step_body(c, d, t),
    );
}

#[inline(always)]
fn forward_step_body(c: &mut RnnCache, d: &RnnDims, t: usize) {
    let u = d.u;
    let (cells, per_gate) = (d.n * d.t * u, d.n * d.t * 4 * u);
    let fused = c.xw.len() >= per_gate
        && c.gates.len() >= per_gate
        && c.c_prev.len() >= cells
        && c.aux.len() >= cells
        && c.zrec.len() >= d.n * 4 * u
        && c.h_new.len() >= d.n * u
        && simd_act::lstm_cells_train(simd_act::TrainStep {
            units: u,
            steps: d.t,
            t,
            xw: &c.xw[..per_gate],
            zrec: &c.zrec[..d.n * 4 * u],
            c: &mut c.c_prev[..cells],
            gates: &mut c.gates[..per_gate],
            tanh_c: &mut c.aux[..cells],
            h: &mut c.h_new[..d.n * u],
        });
    if fused {
        return;
    }
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 4 * u;
        let (c_prev, c_next) = c.c_prev[row..].split_at_mut(u);
        cell_forward(
            &c.xw[grow..grow + 4 * u],
            &c.zrec[n * 4 * u..(n + 1) * 4 * u],
            c_prev,
            &mut c.gates[grow..grow + 4 * u],
            &mut c.aux[row..row + u],
        );
        // `aux` holds c_t until it is carried to the next step, then keeps tanh(c_t).
        if t + 1 < d.t {
            c_next[..u].copy_from_slice(&c.aux[row..row + u]);
        }
        tanh_in_place(&mut c.aux[row..row + u]);
        let (o, tc) = (&c.gates[grow + 3 * u..grow + 4 * u], &c.aux[row..row + u]);
        for ((h, &ok), &t) in c.h_new[n * u..(n + 1) * u].iter_mut().zip(o).zip(tc) {
            *h = ok * t;
        }
    }
}

/// One sample's gates and new cell state: `gates = act(xw + zrec)`, `cell = f⊙c_prev + i⊙g`
/// (left in `cell`). Slices as parameters do not alias, so the loops vectorize.
#[inline(always)]
fn cell_forward(xw: &[f32], zrec: &[f32], c_prev: &[f32], gates: &mut [f32], cell: &mut [f32]) {
    let u = cell.len();
    for ((g, &a), &b) in gates.iter_mut().zip(xw).zip(zrec) {
        *g = a + b;
    }
    let (ifg, o) = gates.split_at_mut(3 * u);
    let (i_f, g) = ifg.split_at_mut(2 * u);
    sigmoid_in_place(i_f);
    tanh_in_place(g);
    sigmoid_in_place(o);
    let (i, f) = i_f.split_at(u);
    let (i, f, g, c_prev) = (&i[..u], &f[..u], &g[..u], &c_prev[..u]);
    for k in 0..u {
        cell[k] = f[k] * c_prev[k] + i[k] * g[k];
    }
}

/// Backward of step `t`: pre-activation gradients into `dz_in`, `dc` carried, direct `dh` zero.
pub(super) fn backward_step(c: &mut RnnCache, d: &RnnDims, t: usize) {
    vectorized(
        #[inline(always)]
        || backward_step_body(c, d, t),
    );
}

#[inline(always)]
fn backward_step_body(c: &mut RnnCache, d: &RnnDims, t: usize) {
    let u = d.u;
    for n in 0..d.n {
        let row = (n * d.t + t) * u;
        let grow = (n * d.t + t) * 4 * u;
        cell_backward(
            &c.gates[grow..grow + 4 * u],
            &c.aux[row..row + u],
            &c.c_prev[row..row + u],
            &mut c.dz_in[grow..grow + 4 * u],
            &mut c.dh[n * u..(n + 1) * u],
            &mut c.dc[n * u..(n + 1) * u],
        );
    }
}

/// One sample's cell backward. Separate slices as parameters tell the compiler they do not
/// overlap (slices taken from the cache's fields inside one function would not), so the loop
/// vectorizes without runtime alias checks.
#[inline(always)]
fn cell_backward(
    gates: &[f32],
    tc: &[f32],
    c_prev: &[f32],
    dz: &mut [f32],
    dh: &mut [f32],
    dc: &mut [f32],
) {
    let u = tc.len();
    let (i, rest) = gates.split_at(u);
    let (f, rest) = rest.split_at(u);
    let (g, o) = rest.split_at(u);
    let (dzi, rest) = dz.split_at_mut(u);
    let (dzf, rest) = rest.split_at_mut(u);
    let (dzg, dzo) = rest.split_at_mut(u);
    let (i, f, g, o, c_prev) = (&i[..u], &f[..u], &g[..u], &o[..u], &c_prev[..u]);
    let (dzo, dh, dc) = (&mut dzo[..u], &mut dh[..u], &mut dc[..u]);
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
