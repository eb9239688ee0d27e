//! Depthwise convolution (issue 15): forward against conv2d with the equivalent block-diagonal
//! kernel (an independent path: im2col + GEMM), backward against central finite differences.

use ndarray::{Array1, Array4, ArrayD, IxDyn};

use super::{check_gradients, data};
use crate::runtime::kernels::conv::{conv2d_forward, Conv2dGeometry, ConvWorkspace, Padding2d};
use crate::runtime::kernels::depthwise::{depthwise_backward, depthwise_forward, DepthwiseGrads};

fn geometries() -> [Conv2dGeometry; 4] {
    let pad = |top, bottom, left, right| Padding2d {
        top,
        bottom,
        left,
        right,
    };
    [
        Conv2dGeometry::default(),
        Conv2dGeometry {
            stride: (2, 2),
            dilation: (1, 1),
            padding: pad(1, 1, 1, 1),
        },
        Conv2dGeometry {
            stride: (1, 2),
            dilation: (2, 1),
            padding: pad(0, 1, 2, 0),
        },
        Conv2dGeometry {
            stride: (1, 1),
            dilation: (1, 2),
            padding: pad(1, 0, 0, 0),
        },
    ]
}

/// Output size along one axis, by the conv formula.
fn out_len(input: usize, k: usize, s: usize, d: usize, pads: usize) -> usize {
    (input + pads - d * (k - 1) - 1) / s + 1
}

#[test]
fn depthwise_forward_is_conv2d_with_a_block_diagonal_kernel() {
    let (n, h, w, c, kh, kw) = (2, 7, 6, 3, 3, 2);
    for m in [1, 2] {
        for geom in geometries() {
            let x = Array4::from_shape_vec((n, h, w, c), data(n * h * w * c, 1, 1.0)).unwrap();
            let k = Array4::from_shape_vec((kh, kw, c, m), data(kh * kw * c * m, 2, 1.0)).unwrap();
            let b = Array1::from_vec(data(c * m, 3, 0.5));
            let p = geom.padding;
            let oh = out_len(h, kh, geom.stride.0, geom.dilation.0, p.top + p.bottom);
            let ow = out_len(w, kw, geom.stride.1, geom.dilation.1, p.left + p.right);
            let mut full = Array4::<f32>::zeros((kh, kw, c, c * m));
            for ((i, j, cc, mm), &v) in k.indexed_iter() {
                full[[i, j, cc, cc * m + mm]] = v;
            }
            let mut want = Array4::<f32>::zeros((n, oh, ow, c * m));
            conv2d_forward(
                x.view(),
                full.view(),
                Some(b.view()),
                &geom,
                &mut ConvWorkspace::new(),
                want.view_mut(),
            )
            .unwrap();
            let mut got = Array4::<f32>::zeros((n, oh, ow, c * m));
            depthwise_forward(x.view(), k.view(), Some(b.view()), &geom, got.view_mut()).unwrap();
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() <= 1e-5, "m {m} {geom:?}: {g} vs {e}");
            }
        }
    }
}

#[test]
fn depthwise_backward_matches_finite_differences() {
    let (n, h, w, c, m, kh, kw) = (2, 5, 5, 2, 2, 3, 2);
    for geom in geometries() {
        let p = geom.padding;
        let oh = out_len(h, kh, geom.stride.0, geom.dilation.0, p.top + p.bottom);
        let ow = out_len(w, kw, geom.stride.1, geom.dilation.1, p.left + p.right);
        let inputs = vec![
            data(n * h * w * c, 4, 1.0),
            data(kh * kw * c * m, 5, 1.0),
            data(c * m, 6, 0.5),
        ];
        let dy = data(n * oh * ow * c * m, 7, 1.0);
        let forward = |ins: &[Vec<f32>]| {
            let x = Array4::from_shape_vec((n, h, w, c), ins[0].clone()).unwrap();
            let k = Array4::from_shape_vec((kh, kw, c, m), ins[1].clone()).unwrap();
            let b = Array1::from_vec(ins[2].clone());
            let mut out = Array4::<f32>::zeros((n, oh, ow, c * m));
            depthwise_forward(x.view(), k.view(), Some(b.view()), &geom, out.view_mut()).unwrap();
            out.into_raw_vec_and_offset().0
        };
        let x = Array4::from_shape_vec((n, h, w, c), inputs[0].clone()).unwrap();
        let k = Array4::from_shape_vec((kh, kw, c, m), inputs[1].clone()).unwrap();
        let g = Array4::from_shape_vec((n, oh, ow, c * m), dy.clone()).unwrap();
        let mut dx = Array4::<f32>::zeros((n, h, w, c));
        let mut dk = Array4::<f32>::zeros((kh, kw, c, m));
        let mut db = Array1::<f32>::zeros(c * m);
        depthwise_backward(
            x.view(),
            k.view(),
            g.view(),
            &geom,
            DepthwiseGrads {
                dx: Some(dx.view_mut()),
                dkernel: dk.view_mut(),
                dbias: Some(db.view_mut()),
            },
        )
        .unwrap();
        check_gradients(
            &format!("depthwise {geom:?}"),
            &inputs,
            &dy,
            &[
                dx.into_raw_vec_and_offset().0,
                dk.into_raw_vec_and_offset().0,
                db.to_vec(),
            ],
            forward,
        );
    }
}

#[test]
fn depthwise_refuses_mismatched_shapes() {
    let x = ArrayD::<f32>::zeros(IxDyn(&[1, 4, 4, 3]));
    let x = x.into_dimensionality().unwrap();
    let k = Array4::<f32>::zeros((3, 3, 2, 1));
    let mut out = Array4::<f32>::zeros((1, 2, 2, 3));
    let geom = Conv2dGeometry::default();
    assert!(depthwise_forward(x.view(), k.view(), None, &geom, out.view_mut()).is_err());
    let k = Array4::<f32>::zeros((5, 5, 3, 1));
    assert!(depthwise_forward(x.view(), k.view(), None, &geom, out.view_mut()).is_err());
}
