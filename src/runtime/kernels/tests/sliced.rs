//! Batch-sliced kernels against one call over the whole batch. The recurrent layer: forward
//! outputs and input gradients bit for bit, weight gradients to f32 rounding (they are sums
//! over samples taken in another order), and the same bits on every run with a given thread
//! count. Pools: the same bits.

use ndarray::{Array2, Array3, ArrayD, ArrayView3, IxDyn};

use super::data;
use crate::runtime::kernels::linalg;
use crate::runtime::kernels::rnn::{
    rnn_backward, rnn_backward_sliced, rnn_forward, rnn_forward_sliced, RnnCache, RnnCell,
    RnnGrads, RnnParams, SlicedRnn, SlicedRun,
};

struct Grads {
    out: ArrayD<f32>,
    dx: Array3<f32>,
    dk: Array2<f32>,
    dr: Array2<f32>,
    db: ArrayD<f32>,
}

fn run(cell: RnnCell, x: ArrayView3<'_, f32>, p: &RnnParams<'_>, sliced: bool) -> Grads {
    let (n, t, f) = x.dim();
    let u = p.recurrent.dim().0;
    let out_shape = [n, t, u];
    let mut out = ArrayD::zeros(IxDyn(&out_shape));
    let dy = ArrayD::from_shape_vec(IxDyn(&out_shape), data(n * t * u, 77, 1.0)).unwrap();
    let mut g = Grads {
        out: ArrayD::zeros(IxDyn(&out_shape)),
        dx: Array3::zeros((n, t, f)),
        dk: Array2::zeros(p.kernel.dim()),
        dr: Array2::zeros(p.recurrent.dim()),
        db: ArrayD::zeros(IxDyn(p.bias.shape())),
    };
    if sliced {
        let mut state = SlicedRnn::new();
        rnn_forward_sliced(
            cell,
            x,
            p,
            SlicedRun::default(),
            true,
            &mut state,
            out.view_mut(),
        )
        .unwrap();
        rnn_backward_sliced(cell, x, p, &mut state, dy.view(), grads(&mut g)).unwrap();
    } else {
        let mut cache = RnnCache::new();
        rnn_forward(cell, x, p, true, &mut cache, out.view_mut()).unwrap();
        rnn_backward(cell, x, p, &mut cache, dy.view(), grads(&mut g)).unwrap();
    }
    g.out = out;
    g
}

fn grads(g: &mut Grads) -> RnnGrads<'_> {
    RnnGrads {
        dx: g.dx.view_mut(),
        dkernel: g.dk.view_mut(),
        drecurrent: g.dr.view_mut(),
        dbias: g.db.view_mut(),
    }
}

fn bits(a: &[f32]) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn slices_give_the_whole_batch_results() {
    for cell in [RnnCell::SimpleRnn, RnnCell::Lstm, RnnCell::Gru] {
        let (n, t, f, u) = (7usize, 5usize, 3usize, 4usize);
        let g = cell.gates();
        let x = Array3::from_shape_vec((n, t, f), data(n * t * f, 1, 1.0)).unwrap();
        let kernel = Array2::from_shape_vec((f, g * u), data(f * g * u, 2, 0.5)).unwrap();
        let recurrent = Array2::from_shape_vec((u, g * u), data(u * g * u, 3, 0.5)).unwrap();
        let bias_shape = cell.bias_shape(u);
        let bias = ArrayD::from_shape_vec(
            IxDyn(&bias_shape),
            data(bias_shape.iter().product(), 4, 0.5),
        )
        .unwrap();
        let p = RnnParams {
            kernel: kernel.view(),
            recurrent: recurrent.view(),
            bias: bias.view(),
        };
        // Serial GEMMs, as each slice runs them (a threaded product may take another path).
        let whole = linalg::serial(|| run(cell, x.view(), &p, false));
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let sliced = pool.install(|| run(cell, x.view(), &p, true));
            let again = pool.install(|| run(cell, x.view(), &p, true));
            let what = format!("{cell:?} on {threads} threads");
            // Samples are independent: outputs and input gradients are the same numbers.
            let (o, w) = (
                sliced.out.as_slice().unwrap(),
                whole.out.as_slice().unwrap(),
            );
            assert_eq!(bits(o), bits(w), "{what}: outputs");
            let (d, w) = (sliced.dx.as_slice().unwrap(), whole.dx.as_slice().unwrap());
            assert_eq!(bits(d), bits(w), "{what}: dx");
            for (name, a, b, c) in [
                ("dkernel", &sliced.dk, &whole.dk, &again.dk),
                ("drecurrent", &sliced.dr, &whole.dr, &again.dr),
            ] {
                let (a, b, c) = (
                    a.as_slice().unwrap(),
                    b.as_slice().unwrap(),
                    c.as_slice().unwrap(),
                );
                assert_eq!(bits(a), bits(c), "{what}: {name} differs between runs");
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                        "{what}: {name} {x} vs {y}"
                    );
                }
            }
            let (a, b) = (sliced.db.as_slice().unwrap(), whole.db.as_slice().unwrap());
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{what}: dbias {x} vs {y}"
                );
            }
            if threads == 1 {
                let (a, b) = (sliced.dk.as_slice().unwrap(), whole.dk.as_slice().unwrap());
                assert_eq!(bits(a), bits(b), "one slice is the whole batch");
            }
        }
    }
}

#[test]
fn batch_split_pools_give_the_serial_bits() {
    use crate::runtime::kernels::pool::{
        pool2d_backward, pool2d_backward_par, pool2d_forward, pool2d_forward_par, Pool2dParams,
        PoolBackward, PoolKind, PoolPadding,
    };
    use ndarray::Array4;
    let (n, h, w, c) = (7usize, 9usize, 8usize, 3usize);
    let x = Array4::from_shape_vec((n, h, w, c), data(n * h * w * c, 5, 1.0)).unwrap();
    for kind in [PoolKind::Max, PoolKind::Avg] {
        let p = Pool2dParams {
            kind,
            pool: (3, 2),
            stride: (2, 2),
            padding: PoolPadding::Same,
        };
        let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
        let dy = Array4::from_shape_vec((n, oh, ow, c), data(n * oh * ow * c, 6, 1.0)).unwrap();
        let mut y = Array4::zeros((n, oh, ow, c));
        let mut dx = Array4::zeros((n, h, w, c));
        pool2d_forward(x.view(), &p, y.view_mut()).unwrap();
        pool2d_backward(x.view(), dy.view(), &p, dx.view_mut()).unwrap();
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut y2 = Array4::from_elem((n, oh, ow, c), f32::NAN);
            let mut dx2 = Array4::from_elem((n, h, w, c), f32::NAN);
            pool.install(|| {
                pool2d_forward_par(x.view(), &p, y2.view_mut()).unwrap();
                let opts = PoolBackward::default();
                pool2d_backward_par(x.view(), dy.view(), &p, dx2.view_mut(), opts).unwrap();
            });
            assert_eq!(bits(y2.as_slice().unwrap()), bits(y.as_slice().unwrap()));
            assert_eq!(bits(dx2.as_slice().unwrap()), bits(dx.as_slice().unwrap()));
        }
    }
}
