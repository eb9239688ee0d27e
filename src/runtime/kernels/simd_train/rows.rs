//! Row reductions in a fixed order with an AVX path: dot products of a matrix's rows with a
//! vector (`row_dots`) or of paired rows (`row_pair_dots`), rows' sums (`lane_sums`) and a
//! row's mean and variance in f64 (`row_mean_var`). Every one sums in eight lanes in order, combines
//! them as `((p0+p1)+(p2+p3))+((p4+p5)+(p6+p7))` and adds the tail one by one; the AVX code
//! keeps the lanes in registers and combines them by horizontal adds in exactly that tree, so
//! both paths give the same bits (the parent's tests run both). Written for the loops LLVM
//! would vectorize by fitting its registers to the final tree (lane pairs in 128-bit halves,
//! with shuffles) instead of one eight-lane register.
//!
//! Part of the module allowed `unsafe` (see the parent): each AVX call sits behind
//! `avx_allowed`, the run-time detection.

#![allow(unsafe_code)]

#[cfg(test)]
use super::BASELINE;

/// Dot products of the rows of a row-major `rows × cols` matrix `a` (`a.len() == rows·cols`)
/// with `x` (`x.len() == cols`), into `out` (`out.len() == rows`); `false` (nothing written)
/// when the lengths disagree.
///
/// Summation order, identical on every path: lane `l` of eight sums `a[8j+l]·x[8j+l]` over
/// `j` in order (starting from 0), the lanes combine as `((p0+p1)+(p2+p3))+((p4+p5)+(p6+p7))`,
/// then the `cols mod 8` tail columns are added one by one. With AVX the rows go eight at a
/// time and the lane sums are combined by horizontal adds in exactly that tree; otherwise
/// (and for the last `rows mod 8` rows) the one-row reference loop `row_dot` runs.
pub fn row_dots(a: &[f32], cols: usize, x: &[f32], out: &mut [f32]) -> bool {
    let rows = out.len();
    if cols == 0 || x.len() != cols || rows.checked_mul(cols) != Some(a.len()) {
        return false;
    }
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    {
        if avx_allowed() && cols >= 8 {
            // SAFETY: the CPU supports AVX (`avx_allowed` detected it); the lengths were checked.
            done = unsafe { avx::row_dots(a, cols, x, out) };
        }
    }
    for (o, row) in out[done..]
        .iter_mut()
        .zip(a[done * cols..].chunks_exact(cols))
    {
        *o = row_dot(row, x);
    }
    true
}

/// Whether the row reductions may take their AVX path: the CPU has AVX, and (in tests) no
/// `simd_train::baseline` forces the reference loops.
#[cfg(target_arch = "x86_64")]
fn avx_allowed() -> bool {
    #[cfg(test)]
    if BASELINE.with(std::cell::Cell::get) {
        return false;
    }
    std::arch::is_x86_feature_detected!("avx")
}

/// One row of [`row_dots`], the reference order.
#[inline]
pub(super) fn row_dot(row: &[f32], x: &[f32]) -> f32 {
    let mut p = [0.0f32; 8];
    let (rc, xc) = (row.chunks_exact(8), x.chunks_exact(8));
    let (rt, xt) = (rc.remainder(), xc.remainder());
    for (r8, x8) in rc.zip(xc) {
        for l in 0..8 {
            p[l] += r8[l] * x8[l];
        }
    }
    let mut s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for (&r, &v) in rt.iter().zip(xt) {
        s += r * v;
    }
    s
}

/// Dot products of the rows of two row-major `rows × cols` matrices, row `i` of `a` with row
/// `i` of `b`, into `out` (`out.len() == rows`; `false`, nothing written, when the lengths
/// disagree). Each in [`row_dots`]'s order (eight lanes in order, the pairwise tree, then the
/// tail one by one), so the same bits on every path; with AVX the rows go eight at a time.
pub fn row_pair_dots(a: &[f32], b: &[f32], cols: usize, out: &mut [f32]) -> bool {
    let rows = out.len();
    if cols == 0 || rows.checked_mul(cols) != Some(a.len()) || a.len() != b.len() {
        return false;
    }
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    {
        if avx_allowed() && cols >= 8 {
            // SAFETY: the CPU supports AVX (`avx_allowed` detected it); the lengths were checked.
            done = unsafe { avx::row_pair_dots(a, b, cols, out) };
        }
    }
    let rest = a[done * cols..]
        .chunks_exact(cols)
        .zip(b[done * cols..].chunks_exact(cols));
    for (o, (ra, rb)) in out[done..].iter_mut().zip(rest) {
        *o = row_dot(ra, rb);
    }
    true
}

/// A row's mean and biased variance, both summed in f64 in the order of [`lane_sum_f64`]:
/// `mean = Σ x / d`, then `var = Σ (x − mean)² / d`. With AVX the eight lanes are two
/// registers of four and combine by horizontal adds in exactly that tree, so the bits are the
/// reference loop's. `(NaN, NaN)` for an empty row.
pub fn row_mean_var(row: &[f32]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx_allowed() {
            // SAFETY: the CPU supports AVX (`avx_allowed` detected it).
            return unsafe { avx::row_mean_var(row) };
        }
    }
    let d = row.len() as f64;
    let mean = lane_sum_f64(row, f64::from) / d;
    let var = lane_sum_f64(row, |x| {
        let centred = f64::from(x) - mean;
        centred * centred
    }) / d;
    (mean, var)
}

/// `Σ term(row[k])` in f64, in [`lane_sum3_f64`]'s order.
#[inline]
pub(super) fn lane_sum_f64(row: &[f32], term: impl Fn(f32) -> f64) -> f64 {
    lane_sum3_f64(row, row, row, |x, _, _| term(x))
}

/// `Σ_k term(a[k], b[k], c[k])` in f64 for `k` below the shortest length (callers pass equal
/// ones), in the one order every f64 row sum here uses: term `k` goes to partial sum `k mod 8`
/// of the whole chunks of eight (each partial in order of `k`, from 0), the partials combine as
/// `((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7))`, then the tail's terms are added in order. Eight
/// chains instead of one, so the adds do not wait on each other's latency; the chunks go by
/// `chunks_exact` (indexing by `k` kept the loop scalar). Inlined, so it vectorizes for the
/// caller's target features.
#[allow(clippy::inline_always)]
#[inline(always)]
pub fn lane_sum3_f64(a: &[f32], b: &[f32], c: &[f32], term: impl Fn(f32, f32, f32) -> f64) -> f64 {
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&a[..n], &b[..n], &c[..n]);
    let mut p = [0f64; 8];
    let (ac, bc, cc) = (a.chunks_exact(8), b.chunks_exact(8), c.chunks_exact(8));
    let tails = (ac.remainder(), bc.remainder(), cc.remainder());
    for ((x, y), z) in ac.zip(bc).zip(cc) {
        for (l, sum) in p.iter_mut().enumerate() {
            *sum += term(x[l], y[l], z[l]);
        }
    }
    let mut total = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for ((&x, &y), &z) in tails.0.iter().zip(tails.1).zip(tails.2) {
        total += term(x, y, z);
    }
    total
}

/// The chunk width of [`lane_sums`]: the tail it leaves to its caller is `len mod LANE_SUMS_WIDTH`.
pub const LANE_SUMS_WIDTH: usize = 8;

/// Each row's sum over its whole chunks of eight, into `out` (`out.len() == rows.len()`, else
/// `false` and nothing written): lane `l` sums `row[8j+l]` over `j` in order (starting from
/// 0), the lanes combine as `((p0+p1)+(p2+p3))+((p4+p5)+(p6+p7))`; the `len mod 8` tail
/// values are left to the caller. Rows may differ in length. With AVX the rows go eight at a
/// time and are combined by horizontal adds in exactly that tree (as in [`row_dots`]); the
/// rest run the one-row reference loop `lane_sum`. Written for loops the compiler would
/// vectorize by fitting its registers to the final tree (lane pairs in 128-bit halves, with
/// shuffles) instead of one eight-lane register.
pub fn lane_sums(rows: &[&[f32]], out: &mut [f32]) -> bool {
    if rows.len() != out.len() {
        return false;
    }
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    {
        if avx_allowed() && rows.len() >= 8 {
            // SAFETY: the CPU supports AVX (`avx_allowed` detected it); the lengths were checked.
            done = unsafe { avx::lane_sums(rows, out) };
        }
    }
    for (o, row) in out[done..].iter_mut().zip(&rows[done..]) {
        *o = lane_sum(row);
    }
    true
}

/// One row of [`lane_sums`], the reference order.
#[inline]
pub(super) fn lane_sum(row: &[f32]) -> f32 {
    let mut p = [0.0f32; LANE_SUMS_WIDTH];
    for c in row.chunks_exact(LANE_SUMS_WIDTH) {
        for l in 0..8 {
            p[l] += c[l];
        }
    }
    ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::{
        __m256, __m256d, _mm256_add_pd, _mm256_add_ps, _mm256_castpd256_pd128,
        _mm256_castps256_ps128, _mm256_cvtps_pd, _mm256_extractf128_pd, _mm256_extractf128_ps,
        _mm256_hadd_pd, _mm256_hadd_ps, _mm256_loadu_ps, _mm256_mul_pd, _mm256_mul_ps,
        _mm256_permute2f128_ps, _mm256_set1_pd, _mm256_setzero_pd, _mm256_setzero_ps,
        _mm256_storeu_ps, _mm256_sub_pd, _mm_add_pd, _mm_cvtsd_f64, _mm_unpackhi_pd,
    };

    /// Rows in blocks of eight; returns how many rows were done (a multiple of 8).
    ///
    /// # Safety
    /// The CPU must support AVX; `a.len() == out.len()·cols`, `x.len() == cols >= 8`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn row_dots(a: &[f32], cols: usize, x: &[f32], out: &mut [f32]) -> usize {
        // SAFETY (all four): the caller's guarantees, and `cols` is `8·C`.
        match cols {
            8 => return unsafe { row_dots_fixed::<1>(a, x, out) },
            16 => return unsafe { row_dots_fixed::<2>(a, x, out) },
            24 => return unsafe { row_dots_fixed::<3>(a, x, out) },
            32 => return unsafe { row_dots_fixed::<4>(a, x, out) },
            _ => {}
        }
        let blocks = out.len() / 8;
        let full = cols / 8 * 8;
        for b in 0..blocks {
            let block = &a[b * 8 * cols..(b + 1) * 8 * cols];
            let mut v = [_mm256_setzero_ps(); 8];
            for (i, vi) in v.iter_mut().enumerate() {
                let row = &block[i * cols..i * cols + full];
                let mut acc = _mm256_setzero_ps();
                for (r8, x8) in row.chunks_exact(8).zip(x.chunks_exact(8)) {
                    // SAFETY: both chunks hold exactly 8 floats.
                    let p = unsafe {
                        _mm256_mul_ps(_mm256_loadu_ps(r8.as_ptr()), _mm256_loadu_ps(x8.as_ptr()))
                    };
                    acc = _mm256_add_ps(acc, p);
                }
                *vi = acc;
            }
            // SAFETY: AVX is enabled here, so the caller's CPU has it.
            let sums = unsafe { combine(&v) };
            let dst = &mut out[b * 8..b * 8 + 8];
            // SAFETY: `dst` holds exactly 8 floats.
            unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), sums) };
            for (i, o) in dst.iter_mut().enumerate() {
                let row = &block[i * cols..(i + 1) * cols];
                for (&r, &xv) in row[full..].iter().zip(&x[full..]) {
                    *o += r * xv;
                }
            }
        }
        blocks * 8
    }

    /// [`row_dots`] for `cols = 8·C`: `x` stays in registers and the row loop is unrolled;
    /// the same operations in the same order (each lane's sum starts from zero), so the same
    /// bits.
    ///
    /// # Safety
    /// The CPU must support AVX; `a.len() == out.len()·8·C`, `x.len() == 8·C`.
    #[target_feature(enable = "avx")]
    unsafe fn row_dots_fixed<const C: usize>(a: &[f32], x: &[f32], out: &mut [f32]) -> usize {
        let cols = 8 * C;
        let blocks = out.len() / 8;
        let mut xv = [_mm256_setzero_ps(); C];
        for (c, xc) in xv.iter_mut().enumerate() {
            // SAFETY: `x` holds `8·C` floats, so each chunk holds exactly 8.
            *xc = unsafe { _mm256_loadu_ps(x[c * 8..c * 8 + 8].as_ptr()) };
        }
        for (b, dst) in out.chunks_exact_mut(8).enumerate() {
            let block = &a[b * 8 * cols..(b + 1) * 8 * cols];
            let mut v = [_mm256_setzero_ps(); 8];
            for (vi, row) in v.iter_mut().zip(block.chunks_exact(cols)) {
                let mut acc = _mm256_setzero_ps();
                for (c, xc) in xv.iter().enumerate() {
                    // SAFETY: the row holds `8·C` floats, so the chunk holds exactly 8.
                    let r = unsafe { _mm256_loadu_ps(row[c * 8..c * 8 + 8].as_ptr()) };
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(r, *xc));
                }
                *vi = acc;
            }
            // SAFETY: AVX is enabled here, so the caller's CPU has it.
            let sums = unsafe { combine(&v) };
            // SAFETY: `dst` holds exactly 8 floats.
            unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), sums) };
        }
        blocks * 8
    }

    /// [`super::row_mean_var`]: lanes 0–3 and 4–7 of the eight partial sums in two registers.
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn row_mean_var(row: &[f32]) -> (f64, f64) {
        let d = row.len() as f64;
        let chunks = row.chunks_exact(8);
        let tail = chunks.remainder();
        let halves = |c: &[f32]| {
            // SAFETY: the chunk holds exactly 8 floats.
            let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
            (
                _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)),
            )
        };
        let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        for c in row.chunks_exact(8) {
            let (a, b) = halves(c);
            lo = _mm256_add_pd(lo, a);
            hi = _mm256_add_pd(hi, b);
        }
        let mut total = tree(lo, hi);
        for &x in tail {
            total += f64::from(x);
        }
        let mean = total / d;
        let centre = _mm256_set1_pd(mean);
        let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        for c in row.chunks_exact(8) {
            let (a, b) = halves(c);
            let (a, b) = (_mm256_sub_pd(a, centre), _mm256_sub_pd(b, centre));
            lo = _mm256_add_pd(lo, _mm256_mul_pd(a, a));
            hi = _mm256_add_pd(hi, _mm256_mul_pd(b, b));
        }
        let mut total = tree(lo, hi);
        for &x in tail {
            let centred = f64::from(x) - mean;
            total += centred * centred;
        }
        (mean, total / d)
    }

    /// `((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7))` of `lo = [s0..s3]`, `hi = [s4..s7]`.
    #[target_feature(enable = "avx")]
    fn tree(lo: __m256d, hi: __m256d) -> f64 {
        // hadd(lo, hi) = [s0+s1, s4+s5 | s2+s3, s6+s7]
        let h = _mm256_hadd_pd(lo, hi);
        let pairs = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
        _mm_cvtsd_f64(pairs) + _mm_cvtsd_f64(_mm_unpackhi_pd(pairs, pairs))
    }

    /// Rows in blocks of eight, each row's tail added after the tree; returns how many rows
    /// were done (a multiple of 8).
    ///
    /// # Safety
    /// The CPU must support AVX; `a.len() == b.len() == out.len()·cols`, `cols >= 8`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn row_pair_dots(
        a: &[f32],
        b: &[f32],
        cols: usize,
        out: &mut [f32],
    ) -> usize {
        let full = cols / 8 * 8;
        let rows = a.chunks_exact(8 * cols).zip(b.chunks_exact(8 * cols));
        for ((block_a, block_b), dst) in rows.zip(out.chunks_exact_mut(8)) {
            let mut v = [_mm256_setzero_ps(); 8];
            let pairs = block_a.chunks_exact(cols).zip(block_b.chunks_exact(cols));
            for (vi, (ra, rb)) in v.iter_mut().zip(pairs) {
                let mut acc = _mm256_setzero_ps();
                for (a8, b8) in ra[..full].chunks_exact(8).zip(rb[..full].chunks_exact(8)) {
                    // SAFETY: both chunks hold exactly 8 floats.
                    let p = unsafe {
                        _mm256_mul_ps(_mm256_loadu_ps(a8.as_ptr()), _mm256_loadu_ps(b8.as_ptr()))
                    };
                    acc = _mm256_add_ps(acc, p);
                }
                *vi = acc;
            }
            // SAFETY: AVX is enabled here, so the caller's CPU has it.
            let sums = unsafe { combine(&v) };
            // SAFETY: `dst` holds exactly 8 floats.
            unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), sums) };
            let pairs = block_a.chunks_exact(cols).zip(block_b.chunks_exact(cols));
            for (o, (ra, rb)) in dst.iter_mut().zip(pairs) {
                for (&x, &y) in ra[full..].iter().zip(&rb[full..]) {
                    *o += x * y;
                }
            }
        }
        out.len() / 8 * 8
    }

    /// Rows in blocks of eight; returns how many rows were done (a multiple of 8).
    ///
    /// # Safety
    /// The CPU must support AVX; `out.len() == rows.len()`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn lane_sums(rows: &[&[f32]], out: &mut [f32]) -> usize {
        for (block, dst) in rows.chunks_exact(8).zip(out.chunks_exact_mut(8)) {
            let mut v = [_mm256_setzero_ps(); 8];
            for (vi, row) in v.iter_mut().zip(block) {
                let mut acc = _mm256_setzero_ps();
                for c in row.chunks_exact(8) {
                    // SAFETY: the chunk holds exactly 8 floats.
                    acc = _mm256_add_ps(acc, unsafe { _mm256_loadu_ps(c.as_ptr()) });
                }
                *vi = acc;
            }
            // SAFETY: AVX is enabled here, so the caller's CPU has it.
            let sums = unsafe { combine(&v) };
            // SAFETY: `dst` holds exactly 8 floats.
            unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), sums) };
        }
        rows.len() / 8 * 8
    }

    /// Eight rows' lane vectors to their eight sums, in [`super::row_dot`]'s tree.
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    unsafe fn combine(v: &[__m256; 8]) -> __m256 {
        // hadd(a, b) = [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, a6+a7, b4+b5, b6+b7]
        let h01 = _mm256_hadd_ps(v[0], v[1]);
        let h23 = _mm256_hadd_ps(v[2], v[3]);
        let h45 = _mm256_hadd_ps(v[4], v[5]);
        let h67 = _mm256_hadd_ps(v[6], v[7]);
        // q = [r0:(p0+p1)+(p2+p3), r1, r2, r3 | r0:(p4+p5)+(p6+p7), r1, r2, r3]
        let q0 = _mm256_hadd_ps(h01, h23);
        let q1 = _mm256_hadd_ps(h45, h67);
        let lo = _mm256_permute2f128_ps(q0, q1, 0x20);
        let hi = _mm256_permute2f128_ps(q0, q1, 0x31);
        _mm256_add_ps(lo, hi)
    }
}
