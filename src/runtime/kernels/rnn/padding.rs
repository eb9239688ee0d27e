//! Keras's padding mask in the training driver (`embedding(..., mask_zero: true)`): a masked
//! step keeps the previous state (`h`, and an LSTM's `c`), and with `return_sequences` outputs
//! the previous output (zeros when Keras's `zero_output_for_mask` is on, as `Bidirectional`
//! sets it). Backward then passes `dh` (and `dc`) through a masked step unchanged, and the step
//! adds nothing to the weight or input gradients: its pre-activation gradients are zero.
//!
//! The forward runs the cell over every step as usual and then overwrites the masked rows, so
//! the unmasked path is untouched; backward likewise runs the cell's backward and then zeroes
//! and restores the masked rows.

use super::{RnnCache, RnnCell, RnnDims, RnnRun, OP};
use crate::runtime::kernels::error::{shape_err, KernelResult};
use crate::runtime::kernels::linalg::ensure_len;

impl RnnCache {
    /// Keeps `run`'s padding mask for the call, in processing order (reversed per sequence
    /// with `go_backwards`, as Keras reverses the mask with the inputs).
    pub(super) fn set_keep(&mut self, d: &RnnDims, run: &RnnRun<'_>) -> KernelResult<()> {
        self.keep.clear();
        self.zero_masked = run.zero_masked_outputs;
        let Some(keep) = run.keep else {
            return Ok(());
        };
        if keep.len() != d.n * d.t {
            return Err(shape_err(
                OP,
                format!("a padding mask of {} steps for {}×{}", keep.len(), d.n, d.t),
            ));
        }
        self.keep.extend_from_slice(keep);
        if run.go_backwards {
            for row in self.keep.chunks_exact_mut(d.t.max(1)) {
                row.reverse();
            }
        }
        Ok(())
    }

    /// Whether sample `n`'s step `t` (processing order) is masked.
    pub(super) fn masked(&self, d: &RnnDims, n: usize, t: usize) -> bool {
        !self.keep.is_empty() && !self.keep[n * d.t + t]
    }

    /// After the cell's forward of step `t`: every masked sample keeps its previous state.
    pub(super) fn carry_masked(&mut self, cell: RnnCell, d: &RnnDims, t: usize) {
        if self.keep.is_empty() {
            return;
        }
        let u = d.u;
        for n in 0..d.n {
            if !self.masked(d, n, t) {
                continue;
            }
            let row = (n * d.t + t) * u;
            self.h_new[n * u..(n + 1) * u].copy_from_slice(&self.h_prev[row..row + u]);
            if cell == RnnCell::Lstm && t + 1 < d.t {
                self.c_prev.copy_within(row..row + u, row + u);
            }
        }
    }

    /// Before the cell's backward of step `t`: the carried gradients of the masked samples,
    /// which pass through the step unchanged.
    pub(super) fn save_masked_grads(&mut self, d: &RnnDims, t: usize) {
        if self.keep.is_empty() {
            return;
        }
        let u = d.u;
        ensure_len(&mut self.carried, 2 * d.n * u);
        for n in 0..d.n {
            if self.masked(d, n, t) {
                let (dh, dc) = self.carried.split_at_mut(d.n * u);
                dh[n * u..(n + 1) * u].copy_from_slice(&self.dh[n * u..(n + 1) * u]);
                dc[n * u..(n + 1) * u].copy_from_slice(&self.dc[n * u..(n + 1) * u]);
            }
        }
    }

    /// After the cell's backward of step `t` (and the recurrent product): a masked sample's
    /// pre-activation gradients are zero and its carried gradients those saved before.
    pub(super) fn restore_masked_grads(&mut self, cell: RnnCell, d: &RnnDims, t: usize) {
        if self.keep.is_empty() {
            return;
        }
        let (u, gu) = (d.u, d.gu(cell));
        for n in 0..d.n {
            if !self.masked(d, n, t) {
                continue;
            }
            let grow = (n * d.t + t) * gu;
            self.dz_in[grow..grow + gu].fill(0.0);
            if cell.separate_recurrent_grads() {
                self.dz_rec[grow..grow + gu].fill(0.0);
            }
            let (dh, dc) = self.carried.split_at(d.n * u);
            self.dh[n * u..(n + 1) * u].copy_from_slice(&dh[n * u..(n + 1) * u]);
            self.dc[n * u..(n + 1) * u].copy_from_slice(&dc[n * u..(n + 1) * u]);
        }
    }

    /// Whether the output of sample `n`'s step `t` is a constant zero (a masked step with
    /// `zero_output_for_mask`), which takes no gradient.
    pub(super) fn zero_output(&self, d: &RnnDims, n: usize, t: usize) -> bool {
        self.zero_masked && self.masked(d, n, t)
    }
}

/// Each step kept by ids `[N·T]` (one slice per id tensor): kept when any id there is
/// non-zero (Keras 3's mask of `embedding(mask_zero=True)`, ORed over merged inputs).
pub fn keep_from_ids<I: Copy + Default + PartialEq>(ids: &[&[I]], keep: &mut Vec<bool>) {
    keep.clear();
    let len = ids.first().map_or(0, |i| i.len());
    keep.resize(len, false);
    let zero = I::default();
    for one in ids {
        for (k, &id) in keep.iter_mut().zip(one.iter()) {
            *k |= id != zero;
        }
    }
}
