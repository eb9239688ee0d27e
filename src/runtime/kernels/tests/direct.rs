//! The paths that use our own GEMM kernel ([`crate::runtime::kernels::simd_gemm`]) against the
//! paths a CPU without AVX2 + FMA takes (im2col + matrixmultiply): the direct convolution for
//! every padding, stride and dilation mix, its fused bias + relu, and `linalg::gemm` on
//! row-major, transposed and accumulating operands. Both sum in f32 in different orders, so
//! they agree to a tolerance scaled by the magnitude of the sum.

use ndarray::{Array2, ArrayView1, ArrayView4, ArrayViewMut4};

use super::data;
use crate::runtime::kernels::conv::{
    conv2d_backward, conv2d_forward_with, Conv2dGeometry, Conv2dGrads, Conv2dShape, ConvForward,
    ConvWorkspace, Padding2d,
};
use crate::runtime::kernels::linalg::gemm;
use crate::runtime::kernels::simd_gemm;

fn assert_near(direct: &[f32], fallback: &[f32], what: &str) {
    assert_eq!(direct.len(), fallback.len());
    let scale = fallback.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in direct.iter().zip(fallback).enumerate() {
        assert!(
            (a - b).abs() <= 2e-6 * scale * 16.0,
            "{what}: element {i}: direct {a} vs fallback {b}"
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn conv(
    x: &[f32],
    xd: [usize; 4],
    k: &[f32],
    kd: [usize; 4],
    bias: &[f32],
    geom: &Conv2dGeometry,
    relu: bool,
) -> Vec<f32> {
    let s = Conv2dShape::new(xd, kd, geom).unwrap();
    let mut out = vec![f32::NAN; s.output().iter().product()];
    let mut ws = ConvWorkspace::new();
    for _ in 0..2 {
        // Twice with one workspace: the second call reuses the padded copy and offsets.
        conv2d_forward_with(
            ArrayView4::from_shape(xd, x).unwrap(),
            ArrayView4::from_shape(kd, k).unwrap(),
            Some(ArrayView1::from(bias)),
            geom,
            &mut ws,
            ArrayViewMut4::from_shape(s.output(), &mut out).unwrap(),
            ConvForward {
                relu,
                parallel: true,
            },
        )
        .unwrap();
    }
    out
}

/// `dx` and `dkernel` of one convolution (twice with one workspace, as training does).
fn conv_grads(
    x: &[f32],
    xd: [usize; 4],
    k: &[f32],
    kd: [usize; 4],
    dy: &[f32],
    geom: &Conv2dGeometry,
) -> (Vec<f32>, Vec<f32>) {
    let s = Conv2dShape::new(xd, kd, geom).unwrap();
    let mut dx = vec![f32::NAN; x.len()];
    let mut dk = vec![f32::NAN; k.len()];
    let mut ws = ConvWorkspace::new();
    for _ in 0..2 {
        conv2d_backward(
            ArrayView4::from_shape(xd, x).unwrap(),
            ArrayView4::from_shape(kd, k).unwrap(),
            ArrayView4::from_shape(s.output(), dy).unwrap(),
            geom,
            &mut ws,
            Conv2dGrads {
                dx: Some(ArrayViewMut4::from_shape(xd, &mut dx).unwrap()),
                dkernel: ArrayViewMut4::from_shape(kd, &mut dk).unwrap(),
                dbias: None,
            },
        )
        .unwrap();
    }
    (dx, dk)
}

/// Every padding, stride and dilation mix the tests sweep, with input and kernel shapes.
pub(super) fn geometries() -> Vec<(Conv2dGeometry, [usize; 4], [usize; 4])> {
    let pads = [
        Padding2d::default(),
        Padding2d {
            top: 1,
            bottom: 1,
            left: 1,
            right: 1,
        },
        Padding2d {
            top: 0,
            bottom: 2,
            left: 1,
            right: 0,
        },
        // Wider than a 3-tap kernel's reach: dx takes the im2col path.
        Padding2d {
            top: 3,
            bottom: 0,
            left: 0,
            right: 3,
        },
    ];
    let mut all = Vec::new();
    for padding in pads {
        for stride in [(1, 1), (2, 1), (2, 3)] {
            for dilation in [(1, 1), (2, 1), (1, 2)] {
                for (xd, kd) in [
                    ([3, 9, 8, 3], [3, 2, 3, 5]),
                    ([2, 7, 7, 1], [3, 3, 1, 17]),
                    ([1, 6, 5, 4], [1, 1, 4, 8]),
                    ([9, 5, 5, 2], [2, 2, 2, 3]),
                ] {
                    let geom = Conv2dGeometry {
                        stride,
                        dilation,
                        padding,
                    };
                    if Conv2dShape::new(xd, kd, &geom).is_ok() {
                        all.push((geom, xd, kd));
                    }
                }
            }
        }
    }
    all
}

#[test]
fn direct_gradients_agree_with_im2col_for_every_geometry() {
    if !simd_gemm::available() {
        return;
    }
    for (seed, (geom, xd, kd)) in geometries().into_iter().enumerate() {
        let seed = seed as u64 + 1;
        let s = Conv2dShape::new(xd, kd, &geom).unwrap();
        let x = data(xd.iter().product(), seed, 1.0);
        let k = data(kd.iter().product(), seed + 100, 0.5);
        let dy = data(s.output().iter().product(), seed + 200, 1.0);
        let (dx, dk) = conv_grads(&x, xd, &k, kd, &dy, &geom);
        let (dx_ref, dk_ref) = simd_gemm::baseline(|| conv_grads(&x, xd, &k, kd, &dy, &geom));
        let what = format!("{xd:?} * {kd:?}, {geom:?}");
        assert_near(&dx, &dx_ref, &format!("dx of {what}"));
        assert_near(&dk, &dk_ref, &format!("dkernel of {what}"));
    }
}

#[test]
fn direct_convolution_agrees_with_im2col_for_every_geometry() {
    if !simd_gemm::available() {
        return;
    }
    for (seed, (geom, xd, kd)) in geometries().into_iter().enumerate() {
        let seed = seed as u64 + 1;
        let x = data(xd.iter().product(), seed, 1.0);
        let k = data(kd.iter().product(), seed + 100, 0.5);
        let bias = data(kd[3], seed + 200, 0.5);
        for relu in [false, true] {
            let direct = conv(&x, xd, &k, kd, &bias, &geom, relu);
            let fallback = simd_gemm::baseline(|| conv(&x, xd, &k, kd, &bias, &geom, relu));
            let what = format!("{xd:?} * {kd:?}, {geom:?}, relu {relu}");
            assert!(direct.iter().all(|v| v.is_finite()), "{what}");
            assert_near(&direct, &fallback, &what);
            if relu {
                assert!(direct.iter().all(|&v| v >= 0.0), "{what}");
            }
        }
    }
}

#[test]
fn own_gemm_agrees_with_matrixmultiply_on_every_layout() {
    if !simd_gemm::available() {
        return;
    }
    let (m, k, n) = (37usize, 29usize, 45usize);
    let a = Array2::from_shape_vec((m, k), data(m * k, 5, 1.0)).unwrap();
    let at = Array2::from_shape_vec((k, m), data(m * k, 6, 1.0)).unwrap();
    let b = Array2::from_shape_vec((k, n), data(k * n, 7, 1.0)).unwrap();
    let bt = Array2::from_shape_vec((n, k), data(k * n, 8, 1.0)).unwrap();
    let c0 = Array2::from_shape_vec((m, n), data(m * n, 9, 1.0)).unwrap();
    for (name, lhs, rhs) in [
        ("a·b", a.view(), b.view()),
        ("aᵀ·b", at.t(), b.view()),
        ("a·bᵀ", a.view(), bt.t()),
        ("aᵀ·bᵀ", at.t(), bt.t()),
    ] {
        for beta in [0.0f32, 1.0] {
            let run = || {
                let mut c = c0.clone();
                gemm("test", 1.0, &lhs, &rhs, beta, &mut c.view_mut()).unwrap();
                c
            };
            let own = run();
            let reference = simd_gemm::baseline(run);
            let what = format!("{name}, beta {beta}");
            assert_near(
                own.as_slice().unwrap(),
                reference.as_slice().unwrap(),
                &what,
            );
        }
    }
}
