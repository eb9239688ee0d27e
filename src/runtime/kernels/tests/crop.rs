//! The cropped convolution a fused conv + pool runs: `conv2d_forward_cropped` against the
//! top-left part of the whole output for every geometry of the direct tests (bit for bit on our
//! GEMM kernel; to f32 rounding on the matrixmultiply fallback, whose order of summation may
//! change with the row count), and the rows and columns a pool reads, by hand.

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut4};

use super::data;
use super::direct::geometries;
use crate::runtime::kernels::conv::{
    conv2d_forward_cropped, conv2d_forward_with, Conv2dGeometry, Conv2dShape, ConvForward,
    ConvWorkspace, Padding2d,
};
use crate::runtime::kernels::pool::{Pool2dParams, PoolKind, PoolPadding};
use crate::runtime::kernels::simd_gemm;

/// The convolution of `x` by `k`, cropped to `rows × cols` when given, whole otherwise.
fn conv(
    (x, xd): (&[f32], [usize; 4]),
    (k, kd): (&[f32], [usize; 4]),
    bias: &[f32],
    geom: &Conv2dGeometry,
    crop: Option<(usize, usize)>,
) -> Vec<f32> {
    let s = Conv2dShape::new(xd, kd, geom).unwrap();
    let (rows, cols) = crop.unwrap_or((s.oh, s.ow));
    let dims = [s.n, rows, cols, s.o];
    let mut out = vec![f32::NAN; dims.iter().product()];
    let (xv, kv) = (
        ArrayView4::from_shape(xd, x).unwrap(),
        ArrayView4::from_shape(kd, k).unwrap(),
    );
    let bias = Some(ArrayView1::from(bias));
    let ov = ArrayViewMut4::from_shape(dims, &mut out).unwrap();
    let opts = ConvForward {
        relu: true,
        parallel: true,
    };
    let mut ws = ConvWorkspace::new();
    match crop {
        Some(c) => conv2d_forward_cropped(xv, kv, bias, geom, c, &mut ws, ov, opts),
        None => conv2d_forward_with(xv, kv, bias, geom, &mut ws, ov, opts),
    }
    .unwrap();
    out
}

#[test]
fn a_cropped_convolution_gives_the_top_left_of_the_whole_output_bit_for_bit() {
    let mut cases = geometries();
    // A pointwise convolution (its uncropped patches are the input itself) and a 1 × 1 crop.
    cases.push((Conv2dGeometry::default(), [2, 5, 4, 3], [1, 1, 3, 4]));
    let mut cropped_any = 0;
    for (seed, (geom, xd, kd)) in cases.into_iter().enumerate() {
        let seed = seed as u64;
        let x = data(xd.iter().product(), 3 * seed + 1, 1.0);
        let k = data(kd.iter().product(), 3 * seed + 2, 0.5);
        let bias = data(kd[3], 3 * seed + 3, 0.1);
        let s = Conv2dShape::new(xd, kd, &geom).unwrap();
        for (rows, cols) in [(s.oh, s.ow), (s.oh - 1, s.ow), (s.oh, s.ow - 1), (1, 1)] {
            if rows == 0 || cols == 0 {
                continue;
            }
            cropped_any += usize::from((rows, cols) != (s.oh, s.ow));
            let run = |crop| conv((&x, xd), (&k, kd), &bias, &geom, crop);
            for path in ["own kernel", "fallback"] {
                let (whole, part) = if path == "fallback" {
                    simd_gemm::baseline(|| (run(None), run(Some((rows, cols)))))
                } else {
                    (run(None), run(Some((rows, cols))))
                };
                let mut expected = Vec::with_capacity(part.len());
                for n in 0..s.n {
                    for oy in 0..rows {
                        let at = ((n * s.oh + oy) * s.ow) * s.o;
                        expected.extend_from_slice(&whole[at..at + cols * s.o]);
                    }
                }
                let what = format!("{xd:?} * {kd:?}, {geom:?}, crop {rows}x{cols}, {path}");
                assert!(part.iter().all(|v| v.is_finite()), "{what}");
                if path == "fallback" {
                    // matrixmultiply may sum a row in another order for another row count.
                    for (a, b) in part.iter().zip(&expected) {
                        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{what}");
                    }
                } else if simd_gemm::available() {
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&part), bits(&expected), "{what}");
                }
            }
        }
    }
    assert!(cropped_any > 20, "{cropped_any} crops");
}

#[test]
fn a_crop_larger_than_the_output_is_refused() {
    let geom = Conv2dGeometry {
        padding: Padding2d::default(),
        ..Conv2dGeometry::default()
    };
    let s = Conv2dShape::new([1, 5, 5, 1], [3, 3, 1, 1], &geom).unwrap();
    assert!(s.cropped(3, 3).is_ok());
    assert!(s.cropped(4, 3).is_err());
    assert!(s.cropped(3, 4).is_err());
}

#[test]
fn a_pool_reads_the_rows_and_columns_up_to_its_last_window() {
    let pool = |size, stride, padding| Pool2dParams {
        kind: PoolKind::Max,
        pool: (size, size),
        stride: (stride, stride),
        padding,
    };
    // 2 × 2 stride 2: 11 → 5 windows over rows 0..10; 3 → 1 over 0..2; 10 → all 10.
    let p = pool(2, 2, PoolPadding::Valid);
    assert_eq!(p.reach(11, 3).unwrap(), (10, 2));
    assert_eq!(p.reach(10, 2).unwrap(), (10, 2));
    // 3 × 3 stride 2 over 8: windows start at 0, 2, 4 and the last ends at 7 (row 7 unread).
    assert_eq!(pool(3, 2, PoolPadding::Valid).reach(8, 9).unwrap(), (7, 9));
    // Overlapping windows, stride 1: every row.
    assert_eq!(pool(3, 1, PoolPadding::Valid).reach(6, 6).unwrap(), (6, 6));
    // `same` padding reads everything; a pool larger than its input is an error.
    assert_eq!(pool(2, 2, PoolPadding::Same).reach(11, 3).unwrap(), (11, 3));
    assert!(pool(4, 1, PoolPadding::Valid).reach(3, 5).is_err());
}
