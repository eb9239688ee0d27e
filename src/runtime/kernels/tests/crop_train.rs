//! The crop of training (`conv2d_forward_reached`, `conv2d_backward_reached` and their sliced
//! forms) against the whole convolution: the forward is the whole output with the pixels past
//! the reach zeroed, and the backward of a `dy` that is zero there gives the whole backward's
//! gradients, for every geometry of the direct tests. Bit for bit on our GEMM kernel; to f32
//! rounding on the matrixmultiply fallback, whose order of summation may change with the row
//! count.

use ndarray::{Array1, Array4, ArrayView4};

use super::data;
use super::direct::geometries;
use crate::runtime::kernels::conv::{
    conv2d_backward, conv2d_backward_reached, conv2d_forward_reached, conv2d_forward_with,
    Conv2dGeometry, Conv2dGrads, Conv2dShape, ConvForward, ConvWorkspace,
};
use crate::runtime::kernels::conv_sliced::{
    conv2d_backward_sliced_reached, conv2d_forward_sliced_reached, SlicedConv,
};
use crate::runtime::kernels::simd_gemm;

/// Output, `dx` (when asked), `dkernel` and `dbias` of one forward and backward.
type Run = (Vec<f32>, Option<Vec<f32>>, Vec<f32>, Vec<f32>);

/// The convolution's forward and backward with `dy`, through the reached entry points when
/// `reach` is given, the whole ones otherwise. Every buffer starts as NaN, so a value the
/// kernels leave unwritten shows.
fn run(
    x: &Array4<f32>,
    k: &Array4<f32>,
    b: &Array1<f32>,
    geom: &Conv2dGeometry,
    dy: &Array4<f32>,
    (reach, with_dx): (Option<(usize, usize)>, bool),
) -> Run {
    let mut y = Array4::from_elem(dy.dim(), f32::NAN);
    let mut dx = Array4::from_elem(x.dim(), f32::NAN);
    let mut dk = Array4::from_elem(k.dim(), f32::NAN);
    let mut db = Array1::from_elem(b.len(), f32::NAN);
    let opts = ConvForward {
        relu: true,
        parallel: true,
    };
    let mut ws = ConvWorkspace::new();
    let (xv, kv, bv) = (x.view(), k.view(), Some(b.view()));
    match reach {
        Some(r) => conv2d_forward_reached(xv, kv, bv, geom, r, &mut ws, y.view_mut(), opts),
        None => conv2d_forward_with(xv, kv, bv, geom, &mut ws, y.view_mut(), opts),
    }
    .unwrap();
    let g = Conv2dGrads {
        dx: with_dx.then(|| dx.view_mut()),
        dkernel: dk.view_mut(),
        dbias: Some(db.view_mut()),
    };
    match reach {
        Some(r) => conv2d_backward_reached(xv, kv, dy.view(), geom, r, &mut ws, g),
        None => conv2d_backward(xv, kv, dy.view(), geom, &mut ws, g),
    }
    .unwrap();
    (
        y.into_raw_vec_and_offset().0,
        with_dx.then(|| dx.into_raw_vec_and_offset().0),
        dk.into_raw_vec_and_offset().0,
        db.to_vec(),
    )
}

/// `v: [N, OH, OW, O]` with every pixel past the top-left `rows × cols` set to zero.
fn zero_past(v: &ArrayView4<'_, f32>, (rows, cols): (usize, usize)) -> Array4<f32> {
    let mut out = v.to_owned();
    for ((_, oy, ox, _), e) in out.indexed_iter_mut() {
        if oy >= rows || ox >= cols {
            *e = 0.0;
        }
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// Equal bits on our GEMM kernel, equal to f32 rounding on the fallback.
fn assert_same(got: &[f32], want: &[f32], exact: bool, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    assert!(got.iter().all(|v| v.is_finite()), "{what}");
    if exact {
        assert_eq!(bits(got), bits(want), "{what}");
    } else {
        for (a, b) in got.iter().zip(want) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{what}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn a_reached_forward_and_backward_give_the_whole_ones_bits() {
    let mut cropped = 0;
    for (seed, (geom, xd, kd)) in geometries().into_iter().enumerate() {
        let seed = seed as u64;
        let s = Conv2dShape::new(xd, kd, &geom).unwrap();
        let x = Array4::from_shape_vec(xd, data(xd.iter().product(), 4 * seed + 1, 1.0)).unwrap();
        let k = Array4::from_shape_vec(kd, data(kd.iter().product(), 4 * seed + 2, 0.5)).unwrap();
        let b = Array1::from(data(kd[3], 4 * seed + 3, 0.1));
        let len = s.output().iter().product();
        let dy = Array4::from_shape_vec(s.output(), data(len, 4 * seed + 4, 1.0)).unwrap();
        let reaches = [
            (s.oh - 1, s.ow),
            (s.oh, s.ow - 1),
            (s.oh - 1, s.ow - 1),
            (1, 1),
        ];
        for (i, reach) in reaches.into_iter().enumerate() {
            if reach.0 == 0 || reach.1 == 0 {
                continue;
            }
            cropped += 1;
            let dy = zero_past(&dy.view(), reach);
            // Every fourth case leaves out `dx`, as for a first layer.
            let with_dx = i != 3;
            for path in ["own kernel", "fallback"] {
                let both = || {
                    let whole = run(&x, &k, &b, &geom, &dy, (None, with_dx));
                    let part = run(&x, &k, &b, &geom, &dy, (Some(reach), with_dx));
                    (whole, part)
                };
                let (whole, part) = if path == "fallback" {
                    simd_gemm::baseline(both)
                } else {
                    both()
                };
                let exact = path == "own kernel" && simd_gemm::available();
                let what = format!("{xd:?} * {kd:?}, {geom:?}, reach {reach:?}, {path}");
                let y_whole = Array4::from_shape_vec(s.output(), whole.0).unwrap();
                let y_want = zero_past(&y_whole.view(), reach)
                    .into_raw_vec_and_offset()
                    .0;
                assert_same(&part.0, &y_want, exact, &format!("y, {what}"));
                match (&part.1, &whole.1) {
                    (Some(a), Some(b)) => assert_same(a, b, exact, &format!("dx, {what}")),
                    (None, None) => {}
                    _ => panic!("dx asked of one run only"),
                }
                assert_same(&part.2, &whole.2, exact, &format!("dkernel, {what}"));
                assert_same(&part.3, &whole.3, exact, &format!("dbias, {what}"));
            }
        }
    }
    assert!(cropped > 40, "{cropped} crops");
}

#[test]
fn sliced_reached_calls_give_the_sliced_whole_bits_on_every_thread_count() {
    // Large enough (> 2^20 multiply-adds) that the batch really is split; a 2 × 2 pool over
    // the 12 × 11 output reads 12 × 10 of it.
    let (n, h, w, c, o) = (9usize, 14usize, 13usize, 8usize, 16usize);
    let x = Array4::from_shape_vec((n, h, w, c), data(n * h * w * c, 11, 1.0)).unwrap();
    let k = Array4::from_shape_vec((3, 3, c, o), data(9 * c * o, 12, 0.3)).unwrap();
    let b = Array1::from(data(o, 13, 0.1));
    let geom = Conv2dGeometry::default();
    let (oh, ow) = (h - 2, w - 2);
    let reach = (oh, ow - 1);
    let dy = Array4::from_shape_vec((n, oh, ow, o), data(n * oh * ow * o, 14, 1.0)).unwrap();
    let dy = zero_past(&dy.view(), reach);
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let sliced = |reach: Option<(usize, usize)>| {
            pool.install(|| {
                let mut state = SlicedConv::new();
                let mut y = Array4::from_elem((n, oh, ow, o), f32::NAN);
                let mut dx = Array4::from_elem((n, h, w, c), f32::NAN);
                let mut dk = Array4::from_elem(k.dim(), f32::NAN);
                let mut db = Array1::from_elem(o, f32::NAN);
                let (xv, kv) = (x.view(), k.view());
                let opts = ConvForward {
                    relu: true,
                    parallel: true,
                };
                let bv = Some(b.view());
                conv2d_forward_sliced_reached(
                    xv,
                    kv,
                    bv,
                    &geom,
                    reach,
                    &mut state,
                    y.view_mut(),
                    opts,
                )
                .unwrap();
                let g = Conv2dGrads {
                    dx: Some(dx.view_mut()),
                    dkernel: dk.view_mut(),
                    dbias: Some(db.view_mut()),
                };
                conv2d_backward_sliced_reached(xv, kv, dy.view(), &geom, reach, &mut state, g)
                    .unwrap();
                [y, dx, dk]
                    .map(|a| a.into_raw_vec_and_offset().0)
                    .into_iter()
                    .chain([db.to_vec()])
                    .collect::<Vec<_>>()
            })
        };
        let (whole, part) = (sliced(None), sliced(Some(reach)));
        let exact = simd_gemm::available();
        let y_whole = Array4::from_shape_vec((n, oh, ow, o), whole[0].clone()).unwrap();
        let y_want = zero_past(&y_whole.view(), reach)
            .into_raw_vec_and_offset()
            .0;
        assert_same(&part[0], &y_want, exact, &format!("y, {threads} threads"));
        for (i, name) in [(1, "dx"), (2, "dkernel"), (3, "dbias")] {
            assert_same(
                &part[i],
                &whole[i],
                exact,
                &format!("{name}, {threads} threads"),
            );
        }
    }
}
