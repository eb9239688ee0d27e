//! The batch-sliced convolution against one serial call over the whole batch: forward and `dx`
//! bit for bit, weight and bias gradients to f32 rounding and the same bits on every run.

use ndarray::{Array1, Array4};

use super::data;
use crate::runtime::kernels::conv::{
    conv2d_backward, conv2d_forward_with, Conv2dGeometry, Conv2dGrads, ConvForward, ConvWorkspace,
    Padding2d,
};
use crate::runtime::kernels::conv_sliced::{
    conv2d_backward_sliced, conv2d_forward_sliced, SlicedConv,
};
use crate::runtime::kernels::linalg;

fn bits(a: &[f32]) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

struct Out {
    y: Array4<f32>,
    dx: Array4<f32>,
    dk: Array4<f32>,
    db: Array1<f32>,
}

fn run(
    x: &Array4<f32>,
    k: &Array4<f32>,
    b: &Array1<f32>,
    geom: &Conv2dGeometry,
    sliced: Option<&mut SlicedConv>,
) -> Out {
    let (n, h, w, c) = x.dim();
    let (kh, kw, _, o) = k.dim();
    let pad = geom.padding;
    let oh = (h + pad.top + pad.bottom - kh) / geom.stride.0 + 1;
    let ow = (w + pad.left + pad.right - kw) / geom.stride.1 + 1;
    let mut y = Array4::zeros((n, oh, ow, o));
    let dy = Array4::from_shape_vec((n, oh, ow, o), data(n * oh * ow * o, 31, 1.0)).unwrap();
    let mut dx = Array4::from_elem((n, h, w, c), f32::NAN);
    let mut dk = Array4::from_elem(k.dim(), f32::NAN);
    let mut db = Array1::from_elem(o, f32::NAN);
    let opts = ConvForward {
        relu: true,
        parallel: false,
    };
    match sliced {
        Some(state) => {
            conv2d_forward_sliced(
                x.view(),
                k.view(),
                Some(b.view()),
                geom,
                state,
                y.view_mut(),
                opts,
            )
            .unwrap();
            let g = grads(&mut dx, &mut dk, &mut db);
            conv2d_backward_sliced(x.view(), k.view(), dy.view(), geom, state, g).unwrap();
        }
        None => linalg::serial(|| {
            let mut ws = ConvWorkspace::new();
            conv2d_forward_with(
                x.view(),
                k.view(),
                Some(b.view()),
                geom,
                &mut ws,
                y.view_mut(),
                opts,
            )
            .unwrap();
            let g = grads(&mut dx, &mut dk, &mut db);
            conv2d_backward(x.view(), k.view(), dy.view(), geom, &mut ws, g).unwrap();
        }),
    }
    Out { y, dx, dk, db }
}

fn grads<'a>(
    dx: &'a mut Array4<f32>,
    dk: &'a mut Array4<f32>,
    db: &'a mut Array1<f32>,
) -> Conv2dGrads<'a> {
    Conv2dGrads {
        dx: Some(dx.view_mut()),
        dkernel: dk.view_mut(),
        dbias: Some(db.view_mut()),
    }
}

#[test]
fn a_single_sample_runs_whole_with_the_same_bits() {
    let (n, h, w, c, o) = (1usize, 30usize, 30usize, 8usize, 16usize);
    let x = Array4::from_shape_vec((n, h, w, c), data(n * h * w * c, 5, 1.0)).unwrap();
    let k = Array4::from_shape_vec((3, 3, c, o), data(9 * c * o, 6, 0.3)).unwrap();
    let b = Array1::from(data(o, 7, 0.1));
    let geom = Conv2dGeometry::default();
    let whole = run(&x, &k, &b, &geom, None);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut state = SlicedConv::new();
    let one = pool.install(|| run(&x, &k, &b, &geom, Some(&mut state)));
    let flat = |a: &Array4<f32>| bits(a.as_slice().unwrap());
    assert_eq!(flat(&one.y), flat(&whole.y));
    assert_eq!(flat(&one.dx), flat(&whole.dx));
    assert_eq!(flat(&one.dk), flat(&whole.dk));
    assert_eq!(bits(&one.db.to_vec()), bits(&whole.db.to_vec()));
}

#[test]
fn slices_give_the_whole_batch_results() {
    // Large enough (> 2^20 multiply-adds) that the batch really is split.
    let (n, h, w, c, o) = (9usize, 14usize, 13usize, 8usize, 16usize);
    let x = Array4::from_shape_vec((n, h, w, c), data(n * h * w * c, 1, 1.0)).unwrap();
    let k = Array4::from_shape_vec((3, 3, c, o), data(9 * c * o, 2, 0.3)).unwrap();
    let b = Array1::from(data(o, 3, 0.1));
    let geometries = [
        Conv2dGeometry::default(),
        Conv2dGeometry {
            padding: Padding2d {
                top: 1,
                bottom: 1,
                left: 1,
                right: 1,
            },
            ..Conv2dGeometry::default()
        },
        Conv2dGeometry {
            stride: (2, 2),
            ..Conv2dGeometry::default()
        },
    ];
    for geom in &geometries {
        let whole = run(&x, &k, &b, geom, None);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut state = SlicedConv::new();
            let sliced = pool.install(|| run(&x, &k, &b, geom, Some(&mut state)));
            // The state is reused as the trainer reuses it.
            let again = pool.install(|| run(&x, &k, &b, geom, Some(&mut state)));
            let what = format!("{geom:?} on {threads} threads");
            let slice = |a: &Array4<f32>| a.as_slice().unwrap().to_vec();
            assert_eq!(bits(&slice(&sliced.y)), bits(&slice(&whole.y)), "{what}: y");
            assert_eq!(
                bits(&slice(&sliced.dx)),
                bits(&slice(&whole.dx)),
                "{what}: dx"
            );
            assert_eq!(
                bits(&slice(&sliced.dk)),
                bits(&slice(&again.dk)),
                "{what}: dk rerun"
            );
            let (db, db_again) = (sliced.db.to_vec(), again.db.to_vec());
            assert_eq!(bits(&db), bits(&db_again), "{what}: db rerun");
            for (name, got, want) in [
                ("dk", slice(&sliced.dk), slice(&whole.dk)),
                ("db", db, whole.db.to_vec()),
            ] {
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{what}: {name} {g} vs {w}"
                    );
                }
                if threads == 1 {
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "{what}: one slice is the whole batch"
                    );
                }
            }
        }
    }
}
