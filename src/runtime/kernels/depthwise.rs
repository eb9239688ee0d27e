//! Depthwise 2-D convolution (Keras's DepthwiseConv2D), channels-last: input channel `c` is
//! convolved with its own `M` filters (the depth multiplier) into output channels `c·M + m`.
//!
//! Input `[N, H, W, C]`, kernel `[kh, kw, C, M]`, optional bias `[C·M]`, output
//! `[N, OH, OW, C·M]`, with conv2d's geometry (stride, dilation, padding). A direct loop: each
//! output element is the bias plus one multiply-add chain over the window in row-major order,
//! so its bits depend on nothing but its inputs (forward and `dx` are the same for any thread
//! count; samples run in parallel). `dkernel` and `dbias` sum over samples in order. Backward
//! overwrites its outputs.

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut1, ArrayViewMut4, Axis, Zip};

use super::conv::Conv2dGeometry;
use super::error::{expect_shape, param_err, KernelResult};
use crate::ops::window::padded_output_size;

const OP: &str = "depthwise_conv2d";

/// The shapes of one call: input, kernel window, channels, multiplier, output size.
#[derive(Clone, Copy, Debug)]
struct Shape {
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    c: usize,
    m: usize,
    oh: usize,
    ow: usize,
}

/// Checks `x` and `kernel` and derives the output size.
fn shape(x: [usize; 4], k: [usize; 4], geom: &Conv2dGeometry) -> KernelResult<Shape> {
    let [_, h, w, c] = x;
    let [kh, kw, kc, m] = k;
    if kc != c {
        return Err(param_err(
            OP,
            format!("kernel has {kc} channels, input {c}"),
        ));
    }
    let p = geom.padding;
    let size = |input, k, s, d, pads| {
        padded_output_size(input, k, s, d, pads)
            .map_err(|_| param_err(OP, "the window does not fit the input"))
    };
    if c.checked_mul(m).is_none() {
        return Err(param_err(OP, "the output channel count overflows"));
    }
    let oh = size(h, kh, geom.stride.0, geom.dilation.0, (p.top, p.bottom))?;
    let ow = size(w, kw, geom.stride.1, geom.dilation.1, (p.left, p.right))?;
    Ok(Shape {
        h,
        w,
        kh,
        kw,
        c,
        m,
        oh,
        ow,
    })
}

/// The input position `o·stride + i·dilation − pad` when it lies inside `0..len`.
fn tap(
    o: usize,
    i: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    len: usize,
) -> Option<usize> {
    (o * stride + i * dilation)
        .checked_sub(pad)
        .filter(|&v| v < len)
}

/// `out = depthwise(x, kernel) + bias`.
pub fn depthwise_forward(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    geom: &Conv2dGeometry,
    mut out: ArrayViewMut4<'_, f32>,
) -> KernelResult<()> {
    let s = shape(x.dim().into(), kernel.dim().into(), geom)?;
    let n = x.dim().0;
    expect_shape(OP, "out", out.shape(), &[n, s.oh, s.ow, s.c * s.m])?;
    if let Some(b) = &bias {
        expect_shape(OP, "bias", b.shape(), &[s.c * s.m])?;
    }
    Zip::from(out.axis_iter_mut(Axis(0)))
        .and(x.axis_iter(Axis(0)))
        .par_for_each(|mut o, xs| {
            for ((oh, ow, ch), v) in o.indexed_iter_mut() {
                let (c, m) = (ch / s.m, ch % s.m);
                let mut acc = bias.as_ref().map_or(0.0, |b| b[ch]);
                for i in 0..s.kh {
                    let Some(ih) =
                        tap(oh, i, geom.stride.0, geom.dilation.0, geom.padding.top, s.h)
                    else {
                        continue;
                    };
                    for j in 0..s.kw {
                        if let Some(iw) = tap(
                            ow,
                            j,
                            geom.stride.1,
                            geom.dilation.1,
                            geom.padding.left,
                            s.w,
                        ) {
                            acc += xs[[ih, iw, c]] * kernel[[i, j, c, m]];
                        }
                    }
                }
                *v = acc;
            }
        });
    Ok(())
}

/// The gradients [`depthwise_backward`] writes (`dx` only when asked for).
pub struct DepthwiseGrads<'a> {
    pub dx: Option<ArrayViewMut4<'a, f32>>,
    pub dkernel: ArrayViewMut4<'a, f32>,
    pub dbias: Option<ArrayViewMut1<'a, f32>>,
}

/// `dx`, `dkernel` and `dbias` of [`depthwise_forward`] given `dy`.
pub fn depthwise_backward(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    geom: &Conv2dGeometry,
    grads: DepthwiseGrads<'_>,
) -> KernelResult<()> {
    let s = shape(x.dim().into(), kernel.dim().into(), geom)?;
    let n = x.dim().0;
    expect_shape(OP, "dy", dy.shape(), &[n, s.oh, s.ow, s.c * s.m])?;
    let DepthwiseGrads {
        dx,
        mut dkernel,
        dbias,
    } = grads;
    expect_shape(OP, "dkernel", dkernel.shape(), kernel.shape())?;
    if let Some(mut db) = dbias {
        expect_shape(OP, "dbias", db.shape(), &[s.c * s.m])?;
        db.fill(0.0);
        for sample in dy.axis_iter(Axis(0)) {
            for ((_, _, ch), &g) in sample.indexed_iter() {
                db[ch] += g;
            }
        }
    }
    dkernel.fill(0.0);
    for (xs, gs) in x.axis_iter(Axis(0)).zip(dy.axis_iter(Axis(0))) {
        for ((oh, ow, ch), &g) in gs.indexed_iter() {
            let (c, m) = (ch / s.m, ch % s.m);
            for i in 0..s.kh {
                let Some(ih) = tap(oh, i, geom.stride.0, geom.dilation.0, geom.padding.top, s.h)
                else {
                    continue;
                };
                for j in 0..s.kw {
                    if let Some(iw) = tap(
                        ow,
                        j,
                        geom.stride.1,
                        geom.dilation.1,
                        geom.padding.left,
                        s.w,
                    ) {
                        dkernel[[i, j, c, m]] += g * xs[[ih, iw, c]];
                    }
                }
            }
        }
    }
    if let Some(mut dx) = dx {
        expect_shape(OP, "dx", dx.shape(), x.shape())?;
        Zip::from(dx.axis_iter_mut(Axis(0)))
            .and(dy.axis_iter(Axis(0)))
            .par_for_each(|mut d, gs| {
                d.fill(0.0);
                for ((oh, ow, ch), &g) in gs.indexed_iter() {
                    let (c, m) = (ch / s.m, ch % s.m);
                    for i in 0..s.kh {
                        let Some(ih) =
                            tap(oh, i, geom.stride.0, geom.dilation.0, geom.padding.top, s.h)
                        else {
                            continue;
                        };
                        for j in 0..s.kw {
                            if let Some(iw) = tap(
                                ow,
                                j,
                                geom.stride.1,
                                geom.dilation.1,
                                geom.padding.left,
                                s.w,
                            ) {
                                d[[ih, iw, c]] += g * kernel[[i, j, c, m]];
                            }
                        }
                    }
                }
            });
    }
    Ok(())
}
