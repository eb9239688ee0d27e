//! Transposed 2-D convolution (Keras's Conv2DTranspose), channels-last: the gradient of a
//! convolution with respect to its input, run forward.
//!
//! Input `x: [N, H, W, C]`, kernel `[kh, kw, F, C]` (Keras's layout), optional bias `[F]`,
//! output `[N, OH, OW, F]` (its size is the caller's: `ops::upsample::transpose_axis`). Input
//! pixel `(i, j)` adds `x[i, j, :]·kernel[a, b, f, :]` to output pixel `(i·sh + a − top,
//! j·sw + b − left)` when that lies inside the output; `top`/`left` ([`TransposeGeometry`]) is the
//! padding of the convolution being transposed. A direct loop: each output element is one sum in
//! a fixed order (input rows, kernel rows, input columns, kernel columns), so forward and `dx`
//! do not depend on the thread count (samples run in parallel); `dkernel` runs kernel taps in
//! parallel, each summing samples in order; `dbias` sums in order. Backward overwrites its
//! outputs.

use ndarray::{ArrayView1, ArrayView4, ArrayViewMut1, ArrayViewMut4};
use rayon::prelude::*;

use super::error::{expect_shape, param_err, KernelResult};
use super::linalg::{column_sums, flat, flat_mut};

const OP: &str = "conv2d_transpose";

/// Strides and the top/left padding of the convolution a transposed one transposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransposeGeometry {
    pub stride: (usize, usize),
    pub pad: (usize, usize),
}

/// The sizes of one call.
#[derive(Clone, Copy, Debug)]
struct Shape {
    h: usize,
    w: usize,
    c: usize,
    kh: usize,
    kw: usize,
    f: usize,
    oh: usize,
    ow: usize,
}

impl Shape {
    fn new(x: [usize; 4], k: [usize; 4], out: [usize; 4]) -> KernelResult<Self> {
        let [n, h, w, c] = x;
        let [kh, kw, f, kc] = k;
        if kc != c || out[0] != n || out[3] != f {
            return Err(param_err(
                OP,
                format!("kernel {k:?} does not map input {x:?} to output {out:?}"),
            ));
        }
        Ok(Shape {
            h,
            w,
            c,
            kh,
            kw,
            f,
            oh: out[1],
            ow: out[2],
        })
    }

    /// The output row (or column) input position `i` and kernel tap `k` reach, if inside.
    fn reach(i: usize, k: usize, stride: usize, pad: usize, len: usize) -> Option<usize> {
        (i * stride + k).checked_sub(pad).filter(|&o| o < len)
    }

    fn dims(self, n: usize) -> [usize; 4] {
        [n, self.oh, self.ow, self.f]
    }
}

/// Calls `visit(input pixel, output pixel, kernel tap)` for every pair one sample links, in
/// the fixed order every direction uses.
fn for_each_tap(s: Shape, g: &TransposeGeometry, mut visit: impl FnMut(usize, usize, usize)) {
    for i in 0..s.h {
        for a in 0..s.kh {
            let Some(oi) = Shape::reach(i, a, g.stride.0, g.pad.0, s.oh) else {
                continue;
            };
            for j in 0..s.w {
                for b in 0..s.kw {
                    if let Some(oj) = Shape::reach(j, b, g.stride.1, g.pad.1, s.ow) {
                        visit(i * s.w + j, oi * s.ow + oj, a * s.kw + b);
                    }
                }
            }
        }
    }
}

/// `out = conv_transpose(x, kernel) + bias`.
pub fn conv_transpose_forward(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    geom: &TransposeGeometry,
    mut out: ArrayViewMut4<'_, f32>,
) -> KernelResult<()> {
    let s = Shape::new(x.dim().into(), kernel.dim().into(), out.dim().into())?;
    let (xs, ks) = (flat(OP, "x", &x)?, flat(OP, "kernel", &kernel)?);
    let b = match &bias {
        Some(b) => {
            expect_shape(OP, "bias", b.shape(), &[s.f])?;
            Some(flat(OP, "bias", b)?)
        }
        None => None,
    };
    let os = flat_mut(OP, "out", &mut out)?;
    let (x_len, o_len) = (s.h * s.w * s.c, s.oh * s.ow * s.f);
    if x_len == 0 || o_len == 0 {
        return Ok(());
    }
    // Rayon's threads take the samples: the intra-op workers park instead of spinning.
    crate::runtime::pool::rest();
    os.par_chunks_mut(o_len)
        .zip(xs.par_chunks(x_len))
        .for_each(|(o, xn)| {
            o.fill(0.0);
            for_each_tap(s, geom, |ip, op, tap| {
                let xv = &xn[ip * s.c..(ip + 1) * s.c];
                let row = &mut o[op * s.f..(op + 1) * s.f];
                let taps = &ks[tap * s.f * s.c..(tap + 1) * s.f * s.c];
                for (y, k) in row.iter_mut().zip(taps.chunks_exact(s.c)) {
                    *y += xv.iter().zip(k).map(|(a, b)| a * b).sum::<f32>();
                }
            });
            if let Some(b) = b {
                for px in o.chunks_exact_mut(s.f) {
                    px.iter_mut().zip(b).for_each(|(y, &v)| *y += v);
                }
            }
        });
    Ok(())
}

/// The gradients [`conv_transpose_backward`] writes (`dx` only when asked for).
pub struct TransposeGrads<'a> {
    pub dx: Option<ArrayViewMut4<'a, f32>>,
    pub dkernel: ArrayViewMut4<'a, f32>,
    pub dbias: Option<ArrayViewMut1<'a, f32>>,
}

/// `dx`, `dkernel` and `dbias` of [`conv_transpose_forward`] given `dy: [N, OH, OW, F]`.
pub fn conv_transpose_backward(
    x: ArrayView4<'_, f32>,
    kernel: ArrayView4<'_, f32>,
    dy: ArrayView4<'_, f32>,
    geom: &TransposeGeometry,
    grads: TransposeGrads<'_>,
) -> KernelResult<()> {
    let s = Shape::new(x.dim().into(), kernel.dim().into(), dy.dim().into())?;
    let n = x.dim().0;
    expect_shape(OP, "dy", dy.shape(), &s.dims(n))?;
    let TransposeGrads {
        dx,
        mut dkernel,
        dbias,
    } = grads;
    expect_shape(OP, "dkernel", dkernel.shape(), kernel.shape())?;
    let (xs, ks, gs) = (
        flat(OP, "x", &x)?,
        flat(OP, "kernel", &kernel)?,
        flat(OP, "dy", &dy)?,
    );
    if let Some(mut db) = dbias {
        expect_shape(OP, "dbias", db.shape(), &[s.f])?;
        column_sums(gs, s.f, flat_mut(OP, "dbias", &mut db)?);
    }
    let (x_len, o_len, tap_len) = (s.h * s.w * s.c, s.oh * s.ow * s.f, s.f * s.c);
    let dks = flat_mut(OP, "dkernel", &mut dkernel)?;
    dks.fill(0.0);
    if x_len == 0 || o_len == 0 || tap_len == 0 {
        return Ok(());
    }
    // dkernel[tap, f, :] = Σ over samples and pixel pairs of dy[op, f]·x[ip, :], one tap per job.
    // Rayon's threads take the samples: the intra-op workers park instead of spinning.
    crate::runtime::pool::rest();
    dks.par_chunks_mut(tap_len).enumerate().for_each(|(t, dk)| {
        let (a, b) = (t / s.kw, t % s.kw);
        for (xn, gn) in xs.chunks_exact(x_len).zip(gs.chunks_exact(o_len)) {
            for i in 0..s.h {
                let Some(oi) = Shape::reach(i, a, geom.stride.0, geom.pad.0, s.oh) else {
                    continue;
                };
                for j in 0..s.w {
                    let Some(oj) = Shape::reach(j, b, geom.stride.1, geom.pad.1, s.ow) else {
                        continue;
                    };
                    let (ip, op) = (i * s.w + j, oi * s.ow + oj);
                    let xv = &xn[ip * s.c..(ip + 1) * s.c];
                    let g = &gn[op * s.f..(op + 1) * s.f];
                    for (row, &gv) in dk.chunks_exact_mut(s.c).zip(g) {
                        row.iter_mut().zip(xv).for_each(|(d, &v)| *d += gv * v);
                    }
                }
            }
        }
    });
    if let Some(mut dx) = dx {
        expect_shape(OP, "dx", dx.shape(), x.shape())?;
        let dxs = flat_mut(OP, "dx", &mut dx)?;
        // Rayon's threads take the samples: the intra-op workers park instead of spinning.
        crate::runtime::pool::rest();
        dxs.par_chunks_mut(x_len)
            .zip(gs.par_chunks(o_len))
            .for_each(|(d, gn)| {
                d.fill(0.0);
                for_each_tap(s, geom, |ip, op, tap| {
                    let dv = &mut d[ip * s.c..(ip + 1) * s.c];
                    let g = &gn[op * s.f..(op + 1) * s.f];
                    let taps = &ks[tap * s.f * s.c..(tap + 1) * s.f * s.c];
                    for (&gv, k) in g.iter().zip(taps.chunks_exact(s.c)) {
                        dv.iter_mut().zip(k).for_each(|(d, &w)| *d += gv * w);
                    }
                });
            });
    }
    Ok(())
}
