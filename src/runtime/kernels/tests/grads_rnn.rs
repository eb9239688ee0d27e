//! The recurrent backward kernels against central finite differences of their forward, and a
//! cache from another call refused.

use ndarray::{Array2, Array3, ArrayD, IxDyn};

use super::{arr, check_gradients, data};
use crate::runtime::kernels::rnn::{
    rnn_backward, rnn_forward, RnnCache, RnnCell, RnnGrads, RnnParams,
};

#[test]
fn recurrent_backward_matches_finite_differences() {
    let (n, t, f, u) = (2, 4, 3, 3);
    for cell in [RnnCell::SimpleRnn, RnnCell::Lstm, RnnCell::Gru] {
        for return_sequences in [true, false] {
            let g = cell.gates();
            let bshape = cell.bias_shape(u);
            let inputs = vec![
                data(n * t * f, 40, 1.0),
                data(f * g * u, 41, 0.6),
                data(u * g * u, 42, 0.6),
                data(g * u * bshape.len(), 43, 0.5),
            ];
            let yshape: Vec<usize> = if return_sequences {
                vec![n, t, u]
            } else {
                vec![n, u]
            };
            let w = data(yshape.iter().product(), 44, 1.0);
            let build = |ins: &[Vec<f32>]| {
                (
                    Array3::from_shape_vec((n, t, f), ins[0].clone()).unwrap(),
                    Array2::from_shape_vec((f, g * u), ins[1].clone()).unwrap(),
                    Array2::from_shape_vec((u, g * u), ins[2].clone()).unwrap(),
                    arr(&bshape, ins[3].clone()),
                )
            };
            let forward = |ins: &[Vec<f32>]| {
                let (x, k, r, b) = build(ins);
                let p = RnnParams {
                    kernel: k.view(),
                    recurrent: r.view(),
                    bias: b.view(),
                };
                let mut out = ArrayD::<f32>::zeros(IxDyn(&yshape));
                rnn_forward(
                    cell,
                    x.view(),
                    &p,
                    return_sequences,
                    &mut RnnCache::new(),
                    out.view_mut(),
                )
                .unwrap();
                out.into_raw_vec_and_offset().0
            };
            let (x, k, r, b) = build(&inputs);
            let p = RnnParams {
                kernel: k.view(),
                recurrent: r.view(),
                bias: b.view(),
            };
            let mut cache = RnnCache::new();
            let mut out = ArrayD::<f32>::zeros(IxDyn(&yshape));
            rnn_forward(
                cell,
                x.view(),
                &p,
                return_sequences,
                &mut cache,
                out.view_mut(),
            )
            .unwrap();
            let mut dx = Array3::<f32>::zeros((n, t, f));
            let mut dk = Array2::<f32>::zeros((f, g * u));
            let mut dr = Array2::<f32>::zeros((u, g * u));
            let mut db = ArrayD::<f32>::zeros(IxDyn(&bshape));
            let grads = RnnGrads {
                dx: dx.view_mut(),
                dkernel: dk.view_mut(),
                drecurrent: dr.view_mut(),
                dbias: db.view_mut(),
            };
            rnn_backward(
                cell,
                x.view(),
                &p,
                &mut cache,
                arr(&yshape, w.clone()).view(),
                grads,
            )
            .unwrap();
            let analytic = vec![
                dx.into_raw_vec_and_offset().0,
                dk.into_raw_vec_and_offset().0,
                dr.into_raw_vec_and_offset().0,
                db.into_raw_vec_and_offset().0,
            ];
            check_gradients(
                &format!("{cell:?} seq={return_sequences}"),
                &inputs,
                &w,
                &analytic,
                forward,
            );
        }
    }
}

#[test]
fn backward_refuses_a_cache_from_another_call() {
    let x = Array3::<f32>::zeros((1, 2, 1));
    let (k, r, b) = (
        Array2::<f32>::zeros((1, 1)),
        Array2::<f32>::zeros((1, 1)),
        ArrayD::<f32>::zeros(IxDyn(&[1])),
    );
    let p = RnnParams {
        kernel: k.view(),
        recurrent: r.view(),
        bias: b.view(),
    };
    let (mut dx, mut dk, mut dr, mut db) = (x.clone(), k.clone(), r.clone(), b.clone());
    let grads = RnnGrads {
        dx: dx.view_mut(),
        dkernel: dk.view_mut(),
        drecurrent: dr.view_mut(),
        dbias: db.view_mut(),
    };
    let dy = ArrayD::<f32>::zeros(IxDyn(&[1, 1]));
    assert!(rnn_backward(
        RnnCell::SimpleRnn,
        x.view(),
        &p,
        &mut RnnCache::new(),
        dy.view(),
        grads
    )
    .is_err());
}
