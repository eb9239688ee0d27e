//! Run-time choice of wider SIMD code generation for the element-wise and matrix-vector loops
//! of training and recurrent inference.
//!
//! The crate is compiled for the x86-64 baseline (SSE2, 4 lanes), so LLVM vectorizes our loops
//! 4 wide even on CPUs with AVX2 (8 lanes). [`vectorized`] runs a closure inside a function
//! compiled with `#[target_feature(enable = "avx2")]` when the CPU has AVX2 (checked at run
//! time, so the binary stays portable), or with `avx512f` (16 lanes) where
//! [`super::isa::Isa::current`] chose AVX-512, and calls it directly otherwise. Code the closure
//! inlines (the loop bodies, `fastmath`, `#[inline(always)]` helpers) is then compiled for
//! AVX2.
//!
//! Numerics do not depend on the path: Rust never contracts `a * b + c` into a fused
//! multiply-add or reassociates float operations, so the AVX2 build of a loop performs exactly
//! the same IEEE operations in the same order as the baseline build, only more per instruction.
//! The tests below check this bit for bit on the kernels that use it.
//!
//! This is the one module allowed `unsafe`: calling a `target_feature` function is unsafe
//! because running AVX2 instructions on a CPU without them is undefined behaviour; each call
//! sits right behind the run-time detection.

#![allow(unsafe_code)]

/// Runs `f`, compiled for AVX2 when the CPU supports it (see the module doc).
#[inline]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(test)]
    if BASELINE.with(std::cell::Cell::get) {
        return f();
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            if super::isa::Isa::current() == super::isa::Isa::Avx512 {
                // SAFETY: as below; `Isa::current` says AVX-512F only where it detected it.
                return unsafe { with_avx512(f) };
            }
            // SAFETY: `avx2` only enables AVX2 code generation for `f`; the CPU supports AVX2,
            // as detected just above.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

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
/// [`baseline`] forces the reference loops.
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
fn row_dot(row: &[f32], x: &[f32]) -> f32 {
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
fn lane_sum(row: &[f32]) -> f32 {
    let mut p = [0.0f32; 8];
    for c in row.chunks_exact(8) {
        for l in 0..8 {
            p[l] += c[l];
        }
    }
    ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_hadd_ps, _mm256_loadu_ps, _mm256_mul_ps,
        _mm256_permute2f128_ps, _mm256_setzero_ps, _mm256_storeu_ps,
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

#[cfg(test)]
thread_local! {
    static BASELINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling test runs inside [`baseline`] (which also turns off
/// [`super::simd_act`]'s cell, to test its fallback).
#[cfg(test)]
pub(crate) fn forced_baseline() -> bool {
    BASELINE.with(std::cell::Cell::get)
}

/// Tests: runs `f` with every [`vectorized`] call inside it on the baseline path, to compare
/// the two builds of a kernel.
#[cfg(test)]
pub(crate) fn baseline<R>(f: impl FnOnce() -> R) -> R {
    BASELINE.with(|b| b.set(true));
    let r = f();
    BASELINE.with(|b| b.set(false));
    r
}

/// `f()` compiled with AVX2 enabled (`f` is inlined here, being generic and called once).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f()` compiled with AVX-512F enabled (16 lanes; the same operations, as for AVX2).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::{baseline, lane_sum, lane_sums, row_dot, row_dots, row_pair_dots, vectorized};
    use crate::runtime::kernels::dense::dense_forward;
    use crate::runtime::kernels::fastmath;
    use crate::runtime::kernels::rnn::{
        rnn_backward, rnn_forward, RnnCache, RnnCell, RnnGrads, RnnParams,
    };
    use crate::runtime::loss::mean_squared_error;
    use ndarray::{Array1, Array2, Array3, ArrayD, IxDyn};

    fn bits(xs: &[f32]) -> Vec<u32> {
        xs.iter().map(|v| v.to_bits()).collect()
    }

    /// Deterministic values in `[-1, 1)`.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn vectorized_and_baseline_builds_agree_bit_for_bit() {
        let xs: Vec<f32> = (0..1037).map(|i| (i as f32 - 500.0) * 0.031).collect();
        let run = |xs: &[f32]| {
            let mut s = xs.to_vec();
            fastmath::sigmoid_in_place(&mut s);
            let mut t = xs.to_vec();
            fastmath::tanh_in_place(&mut t);
            (s, t)
        };
        let wide = vectorized(|| run(&xs));
        let base = baseline(|| run(&xs));
        assert_eq!(bits(&wide.0), bits(&base.0));
        assert_eq!(bits(&wide.1), bits(&base.1));
        // The values themselves are right (not just equal to each other).
        assert!((base.0[500] - 0.5).abs() < 1e-6);
        assert!((base.1[600] - (100.0f32 * 0.031).tanh()).abs() < 1e-6);
    }

    #[test]
    fn row_dots_follow_the_reference_order_on_every_path() {
        // Every fixed width (8, 16, 24, 32 columns), with and without tail rows, and others.
        let shapes = [
            (21, 19),
            (16, 16),
            (9, 8),
            (3, 5),
            (40, 64),
            (21, 24),
            (17, 32),
            (11, 16),
        ];
        for (rows, cols) in shapes {
            let a = values(rows * cols, 10 + cols as u64);
            let x = values(cols, 11);
            let mut fast = vec![0.0; rows];
            assert!(row_dots(&a, cols, &x, &mut fast));
            let mut slow = vec![0.0; rows];
            assert!(baseline(|| row_dots(&a, cols, &x, &mut slow)));
            let reference: Vec<f32> = a.chunks_exact(cols).map(|r| row_dot(r, &x)).collect();
            assert_eq!(bits(&fast), bits(&reference), "{rows}x{cols}");
            assert_eq!(bits(&slow), bits(&reference), "{rows}x{cols}");
            for (r, &got) in fast.iter().enumerate() {
                let want: f64 = (0..cols)
                    .map(|c| f64::from(a[r * cols + c]) * f64::from(x[c]))
                    .sum();
                assert!(
                    (f64::from(got) - want).abs() < 1e-5,
                    "row {r} of {rows}x{cols}"
                );
            }
        }
        let mut out = vec![0.0; 3];
        assert!(
            !row_dots(&[1.0; 8], 4, &[1.0; 4], &mut out),
            "2 rows given for 3 outputs"
        );
    }

    #[test]
    fn row_pair_dots_follow_the_reference_order_on_every_path() {
        // AVX blocks with and without tails, reference rows after them, and narrow rows.
        for (rows, cols) in [(21, 19), (16, 64), (9, 8), (3, 5), (17, 12)] {
            let a = values(rows * cols, 20 + cols as u64);
            let b = values(rows * cols, 21 + rows as u64);
            let mut fast = vec![0.0; rows];
            assert!(row_pair_dots(&a, &b, cols, &mut fast));
            let mut slow = vec![0.0; rows];
            assert!(baseline(|| row_pair_dots(&a, &b, cols, &mut slow)));
            let pairs = a.chunks_exact(cols).zip(b.chunks_exact(cols));
            let reference: Vec<f32> = pairs.map(|(x, y)| row_dot(x, y)).collect();
            assert_eq!(bits(&fast), bits(&reference), "{rows}x{cols}");
            assert_eq!(bits(&slow), bits(&reference), "{rows}x{cols}");
            for (r, &got) in fast.iter().enumerate() {
                let want: f64 = (0..cols)
                    .map(|c| f64::from(a[r * cols + c]) * f64::from(b[r * cols + c]))
                    .sum();
                assert!(
                    (f64::from(got) - want).abs() < 1e-5,
                    "row {r} of {rows}x{cols}"
                );
            }
        }
        let mut out = vec![0.0; 2];
        assert!(
            !row_pair_dots(&[1.0; 8], &[1.0; 4], 4, &mut out),
            "b is short"
        );
    }

    #[test]
    fn lane_sums_follow_the_reference_order_on_every_path() {
        // Rows of different lengths (tails of 0 to 7 left out), 8 + 3 rows: one AVX block and
        // three reference rows; and a hand-computed row.
        let data = values(11 * 70, 12);
        let rows: Vec<&[f32]> = (0..11)
            .map(|i| &data[i * 70..i * 70 + 17 + 5 * i])
            .collect();
        let mut fast = vec![0.0; rows.len()];
        assert!(lane_sums(&rows, &mut fast));
        let mut slow = vec![0.0; rows.len()];
        assert!(baseline(|| lane_sums(&rows, &mut slow)));
        let reference: Vec<f32> = rows.iter().map(|r| lane_sum(r)).collect();
        assert_eq!(bits(&fast), bits(&reference));
        assert_eq!(bits(&slow), bits(&reference));
        for (row, &got) in rows.iter().zip(&fast) {
            let whole = row.len() / 8 * 8;
            let want: f64 = row[..whole].iter().map(|&v| f64::from(v)).sum();
            assert!((f64::from(got) - want).abs() < 1e-5, "{got} vs {want}");
        }
        // 1 + 2 + … + 16 over two chunks (the tail 100 left out): lanes 1+9, 2+10, …, then
        // ((10+12)+(14+16))+((18+20)+(22+24)) = 136.
        let row: Vec<f32> = (1..=16).map(|v| v as f32).chain([100.0]).collect();
        let eight = [row.as_slice(); 8];
        let mut out = [0.0; 8];
        assert!(lane_sums(&eight, &mut out));
        assert_eq!(bits(&out), bits(&[136.0; 8]));
        assert!(
            !lane_sums(&eight, &mut out[..7]),
            "8 rows given for 7 outputs"
        );
    }

    /// The matrix-vector path of dense (the regression benchmark's shapes, shrunk), both builds.
    #[test]
    fn dense_matvec_is_the_same_on_both_paths_and_right() {
        let (rows, feats) = (203, 16);
        let x = ArrayD::from_shape_vec(IxDyn(&[rows, feats]), values(rows * feats, 1)).unwrap();
        let k = Array2::from_shape_vec((feats, 1), values(feats, 2)).unwrap();
        let b = Array1::from_vec(vec![0.25]);
        let run = || {
            let mut out = ArrayD::zeros(IxDyn(&[rows, 1]));
            dense_forward(x.view(), k.view(), Some(b.view()), out.view_mut()).unwrap();
            out
        };
        let wide = run();
        let base = baseline(run);
        assert_eq!(
            bits(wide.as_slice().unwrap()),
            bits(base.as_slice().unwrap())
        );
        for r in 0..rows {
            let want: f64 = 0.25
                + (0..feats)
                    .map(|c| f64::from(x[[r, c]]) * f64::from(k[[c, 0]]))
                    .sum::<f64>();
            assert!((f64::from(wide[[r, 0]]) - want).abs() < 1e-5, "row {r}");
        }
    }

    #[test]
    fn mse_is_the_same_on_both_paths_and_right() {
        let n = 1003;
        let y = ArrayD::from_shape_vec(IxDyn(&[n, 1]), values(n, 3)).unwrap();
        let t = ArrayD::from_shape_vec(IxDyn(&[n, 1]), values(n, 4)).unwrap();
        let wide = mean_squared_error(&y.view(), &t.view()).unwrap();
        let base = baseline(|| mean_squared_error(&y.view(), &t.view()).unwrap());
        assert_eq!(wide.loss.to_bits(), base.loss.to_bits());
        assert_eq!(
            bits(wide.grad.as_slice().unwrap()),
            bits(base.grad.as_slice().unwrap())
        );
        let want: f64 = y
            .iter()
            .zip(t.iter())
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!((f64::from(wide.loss) - want).abs() < 1e-6 * want);
        let g0 = 2.0 * (f64::from(y[[0, 0]]) - f64::from(t[[0, 0]])) / n as f64;
        assert!((f64::from(wide.grad[[0, 0]]) - g0).abs() < 1e-9);
    }

    /// LSTM forward and BPTT on both paths: the same to f32 rounding, not bit for bit, since
    /// with AVX2 + FMA the forward cell is `simd_act`'s (other arithmetic), while `baseline`
    /// runs the fastmath cell. Values are checked against finite differences and fixtures in
    /// the kernel tests.
    #[test]
    fn lstm_forward_and_backward_agree_on_both_paths() {
        let (n, t, f, u) = (3, 5, 7, 9);
        let x = Array3::from_shape_vec((n, t, f), values(n * t * f, 5)).unwrap();
        let kernel = Array2::from_shape_vec((f, 4 * u), values(f * 4 * u, 6)).unwrap();
        let recurrent = Array2::from_shape_vec((u, 4 * u), values(u * 4 * u, 7)).unwrap();
        let bias = ArrayD::from_shape_vec(IxDyn(&[4 * u]), values(4 * u, 8)).unwrap();
        let dy = ArrayD::from_shape_vec(IxDyn(&[n, t, u]), values(n * t * u, 9)).unwrap();
        let run = || {
            let p = RnnParams {
                kernel: kernel.view(),
                recurrent: recurrent.view(),
                bias: bias.view(),
            };
            let mut cache = RnnCache::new();
            let mut out = ArrayD::zeros(IxDyn(&[n, t, u]));
            rnn_forward(
                RnnCell::Lstm,
                x.view(),
                &p,
                true,
                &mut cache,
                out.view_mut(),
            )
            .unwrap();
            let mut dx = Array3::zeros((n, t, f));
            let mut dk = Array2::zeros((f, 4 * u));
            let mut dr = Array2::zeros((u, 4 * u));
            let mut db = ArrayD::zeros(IxDyn(&[4 * u]));
            let g = RnnGrads {
                dx: dx.view_mut(),
                dkernel: dk.view_mut(),
                drecurrent: dr.view_mut(),
                dbias: db.view_mut(),
            };
            rnn_backward(RnnCell::Lstm, x.view(), &p, &mut cache, dy.view(), g).unwrap();
            [
                out.into_raw_vec_and_offset().0,
                dx.into_raw_vec_and_offset().0,
                dk.into_raw_vec_and_offset().0,
                dr.into_raw_vec_and_offset().0,
                db.into_raw_vec_and_offset().0,
            ]
        };
        let wide = run();
        let base = baseline(run);
        for (which, (w, b)) in wide.iter().zip(&base).enumerate() {
            for (x, y) in w.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "output {which}: {x} vs baseline {y}"
                );
            }
        }
        assert!(wide[0].iter().all(|v| v.abs() < 1.0) && wide[0].iter().any(|v| v.abs() > 0.01));
        // Each path is deterministic on its own.
        assert_eq!(bits(&run()[2]), bits(&wide[2]));
    }
}
