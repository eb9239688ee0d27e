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
//! The row reductions with their own AVX code live in the child `rows` (re-exported here).
//!
//! This module and its child are the ones allowed `unsafe` here: calling a `target_feature`
//! function is unsafe because running AVX2 instructions on a CPU without them is undefined
//! behaviour; each call sits right behind the run-time detection.

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

mod rows;
pub use rows::{lane_sum3_f64, lane_sums, row_dots, row_mean_var, row_pair_dots, LANE_SUMS_WIDTH};

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
    use super::rows::{lane_sum, lane_sum_f64, row_dot};
    use super::{baseline, lane_sums, row_dots, row_mean_var, row_pair_dots, vectorized};
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
    fn row_mean_var_follows_the_reference_order_on_every_path() {
        let data = values(70, 30);
        for len in 1..=70 {
            let row = &data[..len];
            let fast = row_mean_var(row);
            let slow = baseline(|| row_mean_var(row));
            let d = len as f64;
            let mean = lane_sum_f64(row, f64::from) / d;
            let var = lane_sum_f64(row, |x| (f64::from(x) - mean) * (f64::from(x) - mean)) / d;
            for (got, want) in [fast, slow]
                .into_iter()
                .flat_map(|(m, v)| [(m, mean), (v, var)])
            {
                assert_eq!(got.to_bits(), want.to_bits(), "length {len}");
            }
            let naive = row.iter().map(|&x| f64::from(x)).sum::<f64>() / d;
            assert!((fast.0 - naive).abs() < 1e-12, "length {len}");
        }
        // 0, 1, …, 63: mean 31.5, variance (64² − 1)/12 = 341.25, exact in f64.
        let ramp: Vec<f32> = (0..64).map(|v| v as f32).collect();
        let (mean, var) = row_mean_var(&ramp);
        assert_eq!(
            (mean.to_bits(), var.to_bits()),
            (31.5f64.to_bits(), 341.25f64.to_bits())
        );
        assert!(row_mean_var(&[]).0.is_nan());
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
