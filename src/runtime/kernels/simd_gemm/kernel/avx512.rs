//! The AVX-512 register tiles of the GEMM tile loop: up to 10 × 32 elements of `C` in
//! twenty 16-lane accumulators (two per row), summed over a block of `k` from broadcasts of
//! ten `A` elements and two loads of a `B` row; bias and relu applied as the tile is stored.
//! (Ten rows, not twelve: at twelve the row pointers and accumulators no longer fit the
//! registers and the compiled loop spilled to the stack, 40% slower on the seed CNN.) A tile of at most 16 columns (a 16-column weight panel, the last columns of `C`)
//! uses one accumulator per row; lane masks cover a tile narrower than its vectors.
//!
//! Every element is the same chain of fused multiply-adds over `k`, in the same order, as in
//! the AVX2 tiles (`avx2.rs`), then the same bias add and `max(·, 0)`: the two sets give the
//! same bits, so a machine's results do not depend on which one it runs.

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_max_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use super::super::TileSet;
use super::{KOffset, TileArgs, Tiles};

/// The AVX-512 tile set: up to 10 × 32.
pub(in super::super) struct Avx512;

impl Tiles for Avx512 {
    const ROWS: usize = TileSet::Avx512.shape().0;
    const COLS: usize = TileSet::Avx512.shape().1;

    #[inline(always)]
    unsafe fn tile<K: KOffset>(t: &TileArgs, koff: K) {
        // SAFETY: forwarded from the caller (the CPU has AVX-512F; the tile is inside a
        // checked call).
        unsafe { dispatch(t, koff) }
    }
}

/// Runs one tile with the register shape its rows and columns need: one or two vectors per
/// row, masked or not.
///
/// # Safety
/// The CPU supports AVX-512F, and the tile's rows, columns and `k` lie inside a call that
/// `super::super::fits` accepted (`t.rows` in `1..=10`, `t.cols` in `1..=32`).
#[target_feature(enable = "avx512f")]
unsafe fn dispatch<K: KOffset>(t: &TileArgs, koff: K) {
    macro_rules! by_rows {
        ($vectors:literal, $full:literal) => {
            match t.rows {
                10 => tile::<10, $vectors, $full, K>(t, koff),
                9 => tile::<9, $vectors, $full, K>(t, koff),
                8 => tile::<8, $vectors, $full, K>(t, koff),
                7 => tile::<7, $vectors, $full, K>(t, koff),
                6 => tile::<6, $vectors, $full, K>(t, koff),
                5 => tile::<5, $vectors, $full, K>(t, koff),
                4 => tile::<4, $vectors, $full, K>(t, koff),
                3 => tile::<3, $vectors, $full, K>(t, koff),
                2 => tile::<2, $vectors, $full, K>(t, koff),
                _ => tile::<1, $vectors, $full, K>(t, koff),
            }
        };
    }
    // SAFETY (for every arm): the tile's rows, columns and `k` lie inside the call that
    // `fits` checked, and the shape chosen covers exactly `t.rows × t.cols`.
    unsafe {
        match (t.cols > 16, t.cols == 16 || t.cols == 32) {
            (true, true) => by_rows!(2, true),
            (true, false) => by_rows!(2, false),
            (false, true) => by_rows!(1, true),
            (false, false) => by_rows!(1, false),
        }
    }
}

/// Lane masks for the first `cols` (in `1..=32`) of two 16-lane vectors.
fn masks(cols: usize) -> [__mmask16; 2] {
    let first = |c: usize| -> __mmask16 {
        if c >= 16 {
            0xFFFF
        } else {
            // `c < 16`, so the shift and the narrowing are exact.
            ((1u32 << c) - 1) as __mmask16
        }
    };
    [first(cols), first(cols.saturating_sub(16))]
}

/// `ROWS × cols` elements of `C` with `VECTORS` 16-lane accumulators per row; `FULL` means
/// `cols == 16 · VECTORS` (no masking).
///
/// # Safety
/// As [`dispatch`], with `ROWS == t.rows`, `t.cols` in `16 · (VECTORS − 1) + 1..=16 ·
/// VECTORS`, and `FULL` only when `t.cols == 16 · VECTORS`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const ROWS: usize, const VECTORS: usize, const FULL: bool, K: KOffset>(
    t: &TileArgs,
    koff: K,
) {
    // SAFETY: every pointer below stays inside the buffers `fits` checked: rows and
    // columns of the tile, `k` below the call's `k`, masked lanes past `cols` untouched.
    unsafe {
        let mask = masks(t.cols);
        let load = |p: *const f32, h: usize| {
            if FULL {
                _mm512_loadu_ps(p.add(16 * h))
            } else {
                _mm512_maskz_loadu_ps(mask[h], p.add(16 * h))
            }
        };
        let mut acc = [[_mm512_setzero_ps(); VECTORS]; ROWS];
        if t.accumulate {
            for (r, row) in acc.iter_mut().enumerate() {
                let p = t.c.add(r * t.ldc);
                for (h, v) in row.iter_mut().enumerate() {
                    *v = load(p, h);
                }
            }
        }
        let mut rowp = [std::ptr::null::<f32>(); ROWS];
        for (r, p) in rowp.iter_mut().enumerate() {
            *p = t.a.add(t.origins[r]);
        }
        for kk in t.k0..t.k0 + t.k {
            let bp = t.b.add(kk * t.ldb);
            let mut b = [_mm512_setzero_ps(); VECTORS];
            for (h, v) in b.iter_mut().enumerate() {
                *v = load(bp, h);
            }
            let off = koff.at(kk);
            for r in 0..ROWS {
                let av = _mm512_set1_ps(*rowp[r].add(off));
                for h in 0..VECTORS {
                    acc[r][h] = _mm512_fmadd_ps(av, b[h], acc[r][h]);
                }
            }
        }
        let mut bias: [__m512; VECTORS] = [_mm512_setzero_ps(); VECTORS];
        if !t.bias.is_null() {
            for (h, v) in bias.iter_mut().enumerate() {
                *v = load(t.bias, h);
            }
        }
        let zero = _mm512_setzero_ps();
        for (r, row) in acc.iter().enumerate() {
            let p = t.c.add(r * t.ldc);
            for h in 0..VECTORS {
                let mut v = row[h];
                if !t.bias.is_null() {
                    v = _mm512_add_ps(v, bias[h]);
                }
                if t.relu {
                    // `max(v, 0)` gives 0 for NaN, like `f32::max(v, 0.0)` and the AVX2 tile.
                    v = _mm512_max_ps(v, zero);
                }
                if FULL {
                    _mm512_storeu_ps(p.add(16 * h), v);
                } else {
                    _mm512_mask_storeu_ps(p.add(16 * h), mask[h], v);
                }
            }
        }
    }
}
