//! 2-D upsampling by integer factors (Keras's UpSampling2D), channels-last, forward and
//! backward.
//!
//! Input `[N, H, W, C]`, output `[N, H·sh, W·sw, C]`. `nearest`: output pixel `(o, p)` is input
//! pixel `(o / sh, p / sw)`. `bilinear`: TensorFlow's `resize_bilinear` with half-pixel centres,
//! each axis's two taps and weight from `ops::upsample::bilinear_taps`; columns blended first,
//! `top + (bottom − top)·wy` of `top = left + (right − left)·wx`.
//! Backward scatters each output gradient back with the same weights. Samples run in
//! parallel; each element's sum has a fixed order, so results do not depend on the thread
//! count. Backward overwrites `dx`.

use ndarray::{ArrayView4, ArrayViewMut4};
use rayon::prelude::*;

use super::error::{param_err, KernelResult};
use super::linalg::{flat, flat_mut};
use crate::ops::upsample::{bilinear_taps, Tap};

const OP: &str = "upsampling2d";

/// The sizes of one call, checked: `x` `[N, H, W, C]` against `y` `[N, H·sh, W·sw, C]`.
fn check(x: [usize; 4], y: [usize; 4], size: [usize; 2]) -> KernelResult<()> {
    let [n, h, w, c] = x;
    let expected = [
        Some(n),
        h.checked_mul(size[0]),
        w.checked_mul(size[1]),
        Some(c),
    ];
    if expected.iter().zip(y).any(|(e, d)| *e != Some(d)) || size.contains(&0) {
        return Err(param_err(
            OP,
            format!("output {y:?} is not input {x:?} upsampled by {size:?}"),
        ));
    }
    Ok(())
}

/// `out = upsample(x)`, nearest or bilinear.
pub fn upsample_forward(
    x: ArrayView4<'_, f32>,
    size: [usize; 2],
    bilinear: bool,
    mut out: ArrayViewMut4<'_, f32>,
) -> KernelResult<()> {
    let [_, h, w, c]: [usize; 4] = x.dim().into();
    let [_, oh, ow, _]: [usize; 4] = out.dim().into();
    check(x.dim().into(), out.dim().into(), size)?;
    let xs = flat(OP, "x", &x)?;
    let os = flat_mut(OP, "out", &mut out)?;
    let (x_len, o_len) = (h * w * c, oh * ow * c);
    if x_len == 0 {
        return Ok(());
    }
    let (rows, cols) = taps(h, w, size, bilinear);
    // Rayon's threads take the samples: the intra-op workers park instead of spinning.
    crate::runtime::pool::rest();
    os.par_chunks_mut(o_len)
        .zip(xs.par_chunks(x_len))
        .for_each(|(o, xn)| {
            for (oy, r) in rows.iter().enumerate() {
                for (ox, q) in cols.iter().enumerate() {
                    let px = |y: usize, x: usize| pixel(xn, (y * w + x) * c, c);
                    let (tl, tr, bl, br) = (
                        px(r.lo, q.lo),
                        px(r.lo, q.hi),
                        px(r.hi, q.lo),
                        px(r.hi, q.hi),
                    );
                    let dst = &mut o[(oy * ow + ox) * c..(oy * ow + ox + 1) * c];
                    if !bilinear {
                        dst.copy_from_slice(tl);
                        continue;
                    }
                    for (ch, d) in dst.iter_mut().enumerate() {
                        let top = tl[ch] + (tr[ch] - tl[ch]) * q.weight;
                        let bottom = bl[ch] + (br[ch] - bl[ch]) * q.weight;
                        *d = top + (bottom - top) * r.weight;
                    }
                }
            }
        });
    Ok(())
}

/// The `c` channels of the pixel starting at `at`.
fn pixel(data: &[f32], at: usize, c: usize) -> &[f32] {
    &data[at..at + c]
}

/// The row and column taps: bilinear ones, or nearest ones (`lo = hi = o / factor`, weight 0,
/// which reads exactly the one pixel).
fn taps(h: usize, w: usize, size: [usize; 2], bilinear: bool) -> (Vec<Tap>, Vec<Tap>) {
    let nearest = |input: usize, factor: usize| {
        (0..input * factor)
            .map(|o| Tap {
                lo: o / factor,
                hi: o / factor,
                weight: 0.0,
            })
            .collect::<Vec<_>>()
    };
    if bilinear {
        (bilinear_taps(h, size[0]), bilinear_taps(w, size[1]))
    } else {
        (nearest(h, size[0]), nearest(w, size[1]))
    }
}

/// `dx` of [`upsample_forward`] given `dy` `[N, H·sh, W·sw, C]`.
pub fn upsample_backward(
    dy: ArrayView4<'_, f32>,
    size: [usize; 2],
    bilinear: bool,
    mut dx: ArrayViewMut4<'_, f32>,
) -> KernelResult<()> {
    let [_, h, w, c]: [usize; 4] = dx.dim().into();
    let [_, oh, ow, _]: [usize; 4] = dy.dim().into();
    check(dx.dim().into(), dy.dim().into(), size)?;
    let gs = flat(OP, "dy", &dy)?;
    let ds = flat_mut(OP, "dx", &mut dx)?;
    let (x_len, o_len) = (h * w * c, oh * ow * c);
    if x_len == 0 {
        return Ok(());
    }
    let (rows, cols) = taps(h, w, size, bilinear);
    // Rayon's threads take the samples: the intra-op workers park instead of spinning.
    crate::runtime::pool::rest();
    ds.par_chunks_mut(x_len)
        .zip(gs.par_chunks(o_len))
        .for_each(|(d, gn)| {
            d.fill(0.0);
            for (oy, r) in rows.iter().enumerate() {
                for (ox, q) in cols.iter().enumerate() {
                    let g = &gn[(oy * ow + ox) * c..(oy * ow + ox + 1) * c];
                    let weights = [
                        (r.lo, q.lo, (1.0 - r.weight) * (1.0 - q.weight)),
                        (r.lo, q.hi, (1.0 - r.weight) * q.weight),
                        (r.hi, q.lo, r.weight * (1.0 - q.weight)),
                        (r.hi, q.hi, r.weight * q.weight),
                    ];
                    for (y, x, k) in weights {
                        let dst = &mut d[(y * w + x) * c..(y * w + x + 1) * c];
                        dst.iter_mut().zip(g).for_each(|(a, &v)| *a += k * v);
                    }
                }
            }
        });
    Ok(())
}
