//! The matrix-vector fast path of `linalg::gemm` (one output column or row) against an f64
//! triple loop, for row-major and transposed operands, several `beta`s and widths that hit
//! the 16-lane blocks and their tails.

use ndarray::{Array2, ArrayView2};

use crate::runtime::kernels::linalg::{column_sums, gemm};

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn reference(
    alpha: f32,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    beta: f32,
    c: &Array2<f32>,
) -> Array2<f64> {
    let (m, k) = a.dim();
    let n = b.dim().1;
    Array2::from_shape_fn((m, n), |(i, j)| {
        let s: f64 = (0..k)
            .map(|p| f64::from(a[[i, p]]) * f64::from(b[[p, j]]))
            .sum();
        f64::from(alpha) * s + f64::from(beta) * f64::from(c[[i, j]])
    })
}

fn check(alpha: f32, a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, beta: f32, seed: u32) {
    let (m, n) = (a.dim().0, b.dim().1);
    let c0 = Array2::from_shape_vec((m, n), values(m * n, seed)).unwrap();
    let want = reference(alpha, &a, &b, beta, &c0);
    let mut c = c0.clone();
    gemm("test", alpha, &a, &b, beta, &mut c.view_mut()).unwrap();
    for ((i, j), &w) in want.indexed_iter() {
        let got = f64::from(c[[i, j]]);
        assert!(
            (got - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "({i},{j}) {got} vs {w} for {m}x{n}"
        );
    }
}

#[test]
fn matrix_times_column_matches_f64() {
    for (m, k) in [(1, 1), (7, 16), (33, 5), (200, 37), (64, 48)] {
        let a = Array2::from_shape_vec((m, k), values(m * k, 1)).unwrap();
        let b = Array2::from_shape_vec((k, 1), values(k, 2)).unwrap();
        for beta in [0.0, 1.0, -0.5] {
            check(1.0, a.view(), b.view(), beta, 3);
            check(0.25, a.view(), b.view(), beta, 4);
        }
        // Transposed matrix (the weight gradient xᵀ·dy): columns contiguous.
        let at = Array2::from_shape_vec((k, m), values(m * k, 5)).unwrap();
        let bt = Array2::from_shape_vec((k, 1), values(k, 6)).unwrap();
        check(
            1.0,
            at.t(),
            Array2::from_shape_vec((k, 1), values(k, 7)).unwrap().view(),
            0.0,
            8,
        );
        check(-2.0, at.t(), bt.view(), 1.0, 9);
    }
}

#[test]
fn row_times_matrix_matches_f64() {
    for (k, n) in [(1, 3), (16, 10), (50, 33), (128, 17)] {
        let a = Array2::from_shape_vec((1, k), values(k, 11)).unwrap();
        let b = Array2::from_shape_vec((k, n), values(k * n, 12)).unwrap();
        check(1.0, a.view(), b.view(), 0.0, 13);
        check(1.0, a.view(), b.view(), 1.0, 14);
        let bt = Array2::from_shape_vec((n, k), values(k * n, 15)).unwrap();
        check(0.5, a.view(), bt.t(), -1.0, 16);
    }
}

#[test]
fn beta_zero_ignores_nan_in_the_output() {
    let a = Array2::from_shape_vec((5, 3), values(15, 21)).unwrap();
    let b = Array2::from_shape_vec((3, 1), values(3, 22)).unwrap();
    let mut c = Array2::from_elem((5, 1), f32::NAN);
    gemm("test", 1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut()).unwrap();
    assert!(c.iter().all(|v| v.is_finite()));
    let mut ct = Array2::from_elem((3, 1), f32::NAN);
    gemm(
        "test",
        1.0,
        &a.t(),
        &Array2::from_shape_vec((5, 1), values(5, 23))
            .unwrap()
            .view(),
        0.0,
        &mut ct.view_mut(),
    )
    .unwrap();
    assert!(ct.iter().all(|v| v.is_finite()));
}

#[test]
fn single_column_sums_match_f64() {
    for rows in [1, 7, 8, 9, 1000] {
        let data = values(rows, 31);
        let mut out = [0.0f32];
        column_sums(&data, 1, &mut out);
        let want: f64 = data.iter().map(|&v| f64::from(v)).sum();
        assert!(
            (f64::from(out[0]) - want).abs() < 1e-4,
            "{rows} rows: {} vs {want}",
            out[0]
        );
    }
    let mut out = [0.0f32; 3];
    column_sums(&[1.0, 2.0, 3.0, 10.0, 20.0, 30.0], 3, &mut out);
    assert_eq!(out, [11.0, 22.0, 33.0]);
}

/// `transpose_into` against the definition, for shapes on and off its 16-row blocks, reusing
/// a longer buffer; a source of the wrong size is refused and leaves the buffer alone.
#[test]
fn transpose_into_gives_the_transpose() {
    use crate::runtime::kernels::linalg::transpose_into;
    let mut dst = vec![7.0f32; 1000];
    for (rows, cols) in [(1, 1), (3, 5), (16, 4), (17, 33), (576, 3)] {
        let src = values(rows * cols, (rows * cols) as u32);
        assert!(transpose_into(&src, rows, cols, &mut dst));
        assert_eq!(dst.len(), rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(dst[c * rows + r].to_bits(), src[r * cols + c].to_bits());
            }
        }
    }
    let before = dst.clone();
    assert!(!transpose_into(&[1.0; 5], 2, 3, &mut dst));
    assert!(!transpose_into(&[1.0; 5], usize::MAX, 2, &mut dst));
    assert_eq!(dst, before);
}
