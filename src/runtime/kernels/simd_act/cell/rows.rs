//! A step's cells over a batch's rows in one call: where each row's [`CellPtrs`] point, for
//! inference ([`RowPtrs`]) and for the training forward in the RNN cache's layout
//! ([`TrainRowPtrs`]), and the entry points that run every row through the parent's
//! [`lstm_cell`] at 8 or 16 lanes.

#![allow(clippy::inline_always)]

use std::arch::x86_64::{__m256, __m512};

use super::super::lanes::Lanes;
use super::{lstm_cell, CellPtrs};

/// A step's inference cells for `rows` samples: row `s` reads `z + s·4u` and its addend
/// (`addend`, or when `addend_index` is not null row `addend_index[s·index_stride]` of the
/// table at `addend`, rows `4u` long), updates `c + s·u` in place,
/// and writes `h_t` at `h + s·h_stride` and, when `out` is not null, at `out + s·out_stride`.
#[derive(Clone, Copy)]
pub(in crate::runtime::kernels::simd_act) struct RowPtrs {
    pub rows: usize,
    pub z: *const f32,
    pub addend: *const f32,
    pub addend_index: *const usize,
    pub index_stride: usize,
    pub c: *mut f32,
    pub h: *mut f32,
    pub h_stride: usize,
    pub out: *mut f32,
    pub out_stride: usize,
}

/// A step's training-forward cells for `rows` samples in the RNN cache's layout (`steps`
/// timesteps, step `t`; `q = s·steps + t` for row `s`): row `s` reads `xw + q·4u`,
/// `zrec + s·4u` and `c_{t−1}` at `c + q·u`, writes the gates at `gates + q·4u`, `tanh(c_t)`
/// at `tanh_c + q·u`, `c_t` at `c + (q + 1)·u` when `t + 1 < steps`, and `h_t` at `h + s·u`.
#[derive(Clone, Copy)]
pub(in crate::runtime::kernels::simd_act) struct TrainRowPtrs {
    pub rows: usize,
    pub steps: usize,
    pub t: usize,
    pub xw: *const f32,
    pub zrec: *const f32,
    pub c: *mut f32,
    pub gates: *mut f32,
    pub tanh_c: *mut f32,
    pub h: *mut f32,
}

/// Where each row of a step's cells reads and writes.
pub(in crate::runtime::kernels::simd_act) trait RowSource:
    Copy
{
    fn rows(&self) -> usize;
    /// Row `s`'s pointers, for `u` units.
    ///
    /// # Safety
    /// `s < rows()`, and the pointers' promises of the implementing type hold.
    unsafe fn row(&self, s: usize, u: usize) -> CellPtrs;
}

impl RowSource for RowPtrs {
    #[inline(always)]
    fn rows(&self) -> usize {
        self.rows
    }

    #[inline(always)]
    unsafe fn row(&self, s: usize, u: usize) -> CellPtrs {
        // SAFETY: the caller's: every offset below is inside row `s`'s ranges.
        unsafe {
            let addend = if self.addend_index.is_null() {
                self.addend
            } else {
                self.addend
                    .add(*self.addend_index.add(s * self.index_stride) * 4 * u)
            };
            let cell = self.c.add(s * u);
            CellPtrs {
                pre_a: self.z.add(s * 4 * u),
                pre_b: addend,
                c_prev: cell,
                cell,
                c_next: std::ptr::null_mut(),
                gates: std::ptr::null_mut(),
                h: self.h.add(s * self.h_stride),
                h_copy: if self.out.is_null() {
                    self.out
                } else {
                    self.out.add(s * self.out_stride)
                },
            }
        }
    }
}

impl RowSource for TrainRowPtrs {
    #[inline(always)]
    fn rows(&self) -> usize {
        self.rows
    }

    #[inline(always)]
    unsafe fn row(&self, s: usize, u: usize) -> CellPtrs {
        // SAFETY: the caller's: every offset below is inside row `s`'s ranges.
        unsafe {
            let q = s * self.steps + self.t;
            CellPtrs {
                pre_a: self.xw.add(q * 4 * u),
                pre_b: self.zrec.add(s * 4 * u),
                c_prev: self.c.add(q * u),
                cell: self.tanh_c.add(q * u),
                c_next: if self.t + 1 < self.steps {
                    self.c.add((q + 1) * u)
                } else {
                    std::ptr::null_mut()
                },
                gates: self.gates.add(q * 4 * u),
                h: self.h.add(s * u),
                h_copy: std::ptr::null_mut(),
            }
        }
    }
}

/// The cells of a step's rows, each as [`lstm_cell`] would run it alone: one call per step,
/// so the constants are broadcast once and one row's last pass overlaps the next row's first.
///
/// # Safety
/// The CPU supports `V`'s instructions; every row's pointers satisfy [`lstm_cell`]'s
/// promises, and no row writes what another row reads or writes.
#[inline(always)]
unsafe fn lstm_cells<V: Lanes, R: RowSource>(p: R, u: usize) {
    // SAFETY: the caller's guarantees, row by row.
    unsafe {
        for s in 0..p.rows() {
            lstm_cell::<V>(p.row(s, u), u);
        }
    }
}

/// [`lstm_cells`] on 8-lane vectors.
///
/// # Safety
/// The CPU supports AVX2 and FMA; the rest as [`lstm_cells`].
#[target_feature(enable = "avx2,fma")]
pub(in crate::runtime::kernels::simd_act) unsafe fn lstm_cells_avx2<R: RowSource>(p: R, u: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { lstm_cells::<__m256, R>(p, u) }
}

/// [`lstm_cells`] on 16-lane vectors.
///
/// # Safety
/// The CPU supports AVX-512F; the rest as [`lstm_cells`].
#[target_feature(enable = "avx512f")]
pub(in crate::runtime::kernels::simd_act) unsafe fn lstm_cells_avx512<R: RowSource>(
    p: R,
    u: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe { lstm_cells::<__m512, R>(p, u) }
}
