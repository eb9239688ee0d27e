//! The two tile sets against each other and the f64 reference: every row count of a partial
//! tile of either set, column counts around 16, 32 and 48 (one and two vectors per row,
//! masked and not), each kind of left-hand matrix, accumulation and the epilogue. AVX-512 and
//! AVX2 must give the same bits; where the CPU has no AVX-512 only the AVX2 half runs.

// Bit-identity between the sets is the point: results are compared exactly.
#![allow(clippy::float_cmp)]

use super::tests::{assert_close, reference, values, Case};
use super::{available, gemm, Epilogue, GemmCall, Lhs, TileSet};
use crate::runtime::kernels::isa::with_avx2;

/// One product of `m × k` by `k × n` (row stride `n + 3`) into `C` (row stride `n + 1`,
/// filled with NaN or, when accumulating, with values), run with `lhs` for `A[i][k] = a(i, k)`.
fn product(
    (m, k, n): (usize, usize, usize),
    lhs: Lhs<'_>,
    a: &dyn Fn(usize, usize) -> f32,
    accumulate: bool,
    bias: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    let (ldb, ldc) = (n + 3, n + 1);
    let b = values(k * ldb, (7 * n + k) as u64);
    let init = values(m * ldc, 99);
    let mut c = if accumulate {
        init.clone()
    } else {
        vec![f32::NAN; m * ldc]
    };
    let call = GemmCall {
        lhs,
        m,
        k,
        n,
        rhs: &b,
        ldb,
        ldc,
        accumulate,
        epilogue: Epilogue { bias, relu },
        parallel: false,
    };
    assert!(gemm(&call, &mut c));
    let case = Case { m, k, n, ldb, ldc };
    let init_c = accumulate.then_some(&init[..]);
    let (want, scale) = reference(&case, a, &b, init_c, bias, relu);
    for i in 0..m {
        let row = i * ldc;
        assert_close(&c[row..row + n], &want[row..row + n], &scale[row..row + n]);
        // The padding between rows is never written.
        let pad = c[row + n];
        assert!(if accumulate {
            pad == init[row + n]
        } else {
            pad.is_nan()
        });
    }
    c
}

/// Runs `run` with the tile set in force and, where the CPU has AVX-512, with the AVX2 set
/// too, and checks that both give the same bits.
fn same_bits_on_both_sets(what: &str, run: impl Fn() -> Vec<f32>) {
    let wide = run();
    let narrow = with_avx2(&run);
    let same = wide
        .iter()
        .zip(&narrow)
        .all(|(w, n)| w.to_bits() == n.to_bits());
    assert!(same, "{what}: the tile sets disagree");
}

#[test]
fn both_tile_sets_match_the_reference_and_each_other() {
    if !available() {
        eprintln!("skipped: this CPU has no AVX2 + FMA, so the GEMM declines every call");
        return;
    }
    if TileSet::current() != TileSet::Avx512 {
        eprintln!("note: no AVX-512 here (or MODELC_MAX_ISA=avx2); only the AVX2 tiles ran");
    }
    let rows = [1usize, 2, 5, 6, 7, 9, 10, 11, 12, 13, 19, 20, 21, 31];
    let cols = [1usize, 15, 16, 17, 31, 32, 33, 47, 48, 50, 64, 65];
    for (seed, &m) in rows.iter().enumerate() {
        for &n in &cols {
            let k = 3 + (m + n) % 11;
            let lda = k + 2;
            let a = values(m * lda, seed as u64 + 1);
            let bias = values(n, 5);
            let lhs = Lhs::Strided {
                data: &a,
                row_stride: lda,
                col_stride: 1,
            };
            let at = |i: usize, kk: usize| a[i * lda + kk];
            let flags = [(false, None, false), (true, Some(&bias[..]), true)];
            for (accumulate, bias, relu) in flags {
                same_bits_on_both_sets(&format!("{m} × {k} × {n} row-major"), || {
                    product((m, k, n), lhs, &at, accumulate, bias, relu)
                });
            }
            // The transpose of a `k × m` matrix, and rows gathered through offset tables.
            let t = values(k * m, seed as u64 + 50);
            let transposed = Lhs::Strided {
                data: &t,
                row_stride: 1,
                col_stride: m,
            };
            let t_at = |i: usize, kk: usize| t[kk * m + i];
            same_bits_on_both_sets(&format!("{m} × {k} × {n} transposed"), || {
                product((m, k, n), transposed, &t_at, true, None, false)
            });
            let row_offsets: Vec<usize> = (0..m).map(|i| (i * 7) % (m + 1) * lda).collect();
            let k_offsets: Vec<usize> = (0..k).map(|kk| (kk * 5) % lda).collect();
            let g = values((m + 1) * lda, seed as u64 + 90);
            let gather = Lhs::Gather {
                data: &g,
                row_offsets: &row_offsets,
                k_offsets: &k_offsets,
            };
            let g_at = |i: usize, kk: usize| g[row_offsets[i] + k_offsets[kk]];
            same_bits_on_both_sets(&format!("{m} × {k} × {n} gathered"), || {
                product((m, k, n), gather, &g_at, false, Some(&bias), false)
            });
        }
    }
}

#[test]
fn both_tile_sets_give_the_same_convolution() {
    if !available() {
        eprintln!("skipped: this CPU has no AVX2 + FMA, so the GEMM declines every call");
        return;
    }
    // Two samples of a 7 × 9 × 3 input, 3 × 3 kernel, stride 1: 5 × 7 = 35 pixels each.
    let (h, w, ch, kh, kw) = (7usize, 9usize, 3usize, 3usize, 3usize);
    let (oh, ow) = (h - kh + 1, w - kw + 1);
    let x = values(2 * h * w * ch, 21);
    let k_offsets: Vec<usize> = (0..kh * kw * ch)
        .map(|t| {
            let (ky, kx, ci) = (t / (kw * ch), t / ch % kw, t % ch);
            (ky * w + kx) * ch + ci
        })
        .collect();
    let geometry = super::ConvRows {
        pixels: oh * ow,
        ow,
        sample_len: h * w * ch,
        row_step: w * ch,
        col_step: ch,
    };
    let lhs = Lhs::Conv {
        data: &x,
        geometry,
        k_offsets: &k_offsets,
    };
    let at = |i: usize, kk: usize| {
        let (s, p) = (i / (oh * ow), i % (oh * ow));
        x[s * h * w * ch + (p / ow) * w * ch + (p % ow) * ch + k_offsets[kk]]
    };
    let bias = values(64, 8);
    for n in [16usize, 33, 64] {
        same_bits_on_both_sets(&format!("convolution to {n} channels"), || {
            product(
                (2 * oh * ow, kh * kw * ch, n),
                lhs,
                &at,
                false,
                Some(&bias),
                true,
            )
        });
    }
}
