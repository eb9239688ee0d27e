//! The AVX2 + FMA register tiles of the GEMM tile loop: up to 6 × 16 elements of `C` in
//! twelve 8-lane accumulators, summed over a block of `k` from broadcasts of six `A` elements
//! and two loads of a `B` row; bias and relu applied as the tile is stored. Masked loads and
//! stores cover a tile narrower than 16 columns.

use std::arch::x86_64::{
    __m256, __m256i, _mm256_add_ps, _mm256_broadcast_ss, _mm256_cmpgt_epi32, _mm256_fmadd_ps,
    _mm256_loadu_ps, _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_max_ps, _mm256_set1_epi32,
    _mm256_setr_epi32, _mm256_setzero_ps, _mm256_storeu_ps,
};

use super::super::TileSet;
use super::{KOffset, TileArgs, Tiles};

/// The AVX2 + FMA tile set: up to 6 × 16.
pub(in super::super) struct Avx2;

impl Tiles for Avx2 {
    const ROWS: usize = TileSet::Avx2.shape().0;
    const COLS: usize = TileSet::Avx2.shape().1;

    #[inline(always)]
    unsafe fn tile<K: KOffset>(t: &TileArgs, koff: K) {
        // SAFETY: forwarded from the caller (the CPU has AVX2 and FMA; the tile is inside a
        // checked call).
        unsafe { dispatch(t, koff) }
    }
}

/// Runs one tile with the register shape its rows and columns need.
///
/// # Safety
/// The CPU supports AVX2 and FMA, and the tile's rows, columns and `k` lie inside a call
/// that `super::super::fits` accepted (`t.rows` in `1..=6`, `t.cols` in `1..=16`).
#[target_feature(enable = "avx2,fma")]
unsafe fn dispatch<K: KOffset>(t: &TileArgs, koff: K) {
    // SAFETY (for every arm): the tile's rows, columns and `k` lie inside the call that
    // `fits` checked.
    unsafe {
        match (t.rows, t.cols == Avx2::COLS) {
            (6, true) => tile::<6, true, K>(t, koff),
            (6, false) => tile::<6, false, K>(t, koff),
            (5, true) => tile::<5, true, K>(t, koff),
            (5, false) => tile::<5, false, K>(t, koff),
            (4, true) => tile::<4, true, K>(t, koff),
            (4, false) => tile::<4, false, K>(t, koff),
            (3, true) => tile::<3, true, K>(t, koff),
            (3, false) => tile::<3, false, K>(t, koff),
            (2, true) => tile::<2, true, K>(t, koff),
            (2, false) => tile::<2, false, K>(t, koff),
            (_, true) => tile::<1, true, K>(t, koff),
            (_, false) => tile::<1, false, K>(t, koff),
        }
    }
}

/// Lane masks for the first `cols` of sixteen columns (two 8-lane halves).
///
/// # Safety
/// The CPU supports AVX2 (the caller is a `target_feature` function that requires it).
#[inline(always)]
unsafe fn masks(cols: usize) -> [__m256i; 2] {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let c = cols as i32;
    [
        _mm256_cmpgt_epi32(_mm256_set1_epi32(c), lanes),
        _mm256_cmpgt_epi32(_mm256_set1_epi32(c - 8), lanes),
    ]
}

/// `ROWS × cols` elements of `C`; `FULL` means `cols == 16` (no masking).
///
/// # Safety
/// As [`dispatch`], with `ROWS == t.rows` and `FULL` only when `t.cols == 16`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const ROWS: usize, const FULL: bool, K: KOffset>(t: &TileArgs, koff: K) {
    // SAFETY: every pointer below stays inside the buffers `fits` checked: rows and
    // columns of the tile, `k` below the call's `k`, masked lanes past `cols` untouched.
    unsafe {
        let mask = masks(t.cols);
        let load = |p: *const f32, h: usize| {
            if FULL {
                _mm256_loadu_ps(p.add(8 * h))
            } else {
                _mm256_maskload_ps(p.add(8 * h), mask[h])
            }
        };
        let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
        if t.accumulate {
            for (r, row) in acc.iter_mut().enumerate() {
                let p = t.c.add(r * t.ldc);
                row[0] = load(p, 0);
                row[1] = load(p, 1);
            }
        }
        let mut rowp = [std::ptr::null::<f32>(); ROWS];
        for (r, p) in rowp.iter_mut().enumerate() {
            *p = t.a.add(t.origins[r]);
        }
        for kk in t.k0..t.k0 + t.k {
            let bp = t.b.add(kk * t.ldb);
            let b0 = load(bp, 0);
            let b1 = load(bp, 1);
            let off = koff.at(kk);
            for r in 0..ROWS {
                let av = _mm256_broadcast_ss(&*rowp[r].add(off));
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
            }
        }
        let bias: [__m256; 2] = if t.bias.is_null() {
            [_mm256_setzero_ps(); 2]
        } else {
            [load(t.bias, 0), load(t.bias, 1)]
        };
        let zero = _mm256_setzero_ps();
        for (r, row) in acc.iter().enumerate() {
            let p = t.c.add(r * t.ldc);
            for h in 0..2 {
                let mut v = row[h];
                if !t.bias.is_null() {
                    v = _mm256_add_ps(v, bias[h]);
                }
                if t.relu {
                    // `max(v, 0)` gives 0 for NaN, like `f32::max(v, 0.0)`.
                    v = _mm256_max_ps(v, zero);
                }
                if FULL {
                    _mm256_storeu_ps(p.add(8 * h), v);
                } else {
                    _mm256_maskstore_ps(p.add(8 * h), mask[h], v);
                }
            }
        }
    }
}
