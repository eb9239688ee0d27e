//! Inverted dropout with a mask drawn from a seeded ChaCha8 stream.
//!
//! Each element (in row-major order) consumes one `u32` of the stream: `u = bits >> 8` scaled
//! to `[0, 1)`; the element is kept when `u >= rate`. Kept elements are scaled by
//! `1/(1 − rate)`, so the expected output equals the input. The mask (0 or the scale) is
//! written out for backward: `dx = dy ⊙ mask`. Same seed and shape → same mask on every
//! platform (no dependence on `rand`'s distribution code).

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

use super::error::{expect_shape, param_err, KernelResult};

const OP: &str = "dropout";

/// Training forward: fills `mask` from `rng` and writes `out = x ⊙ mask`.
pub fn dropout_forward(
    x: ArrayViewD<'_, f32>,
    rate: f32,
    rng: &mut ChaCha8Rng,
    mut mask: ArrayViewMutD<'_, f32>,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    if !(0.0..1.0).contains(&rate) {
        return Err(param_err(OP, format!("rate {rate} outside [0, 1)")));
    }
    expect_shape(OP, "mask", mask.shape(), x.shape())?;
    expect_shape(OP, "out", out.shape(), x.shape())?;
    match mask.as_slice_mut() {
        Some(m) => draw_mask(rate, rng, m),
        None => {
            return Err(super::error::KernelError::Layout {
                op: OP,
                tensor: "mask",
            })
        }
    }
    Zip::from(&mut out)
        .and(&x)
        .and(&mask)
        .for_each(|o, &v, &m| *o = v * m);
    Ok(())
}

/// Fills `mask` in order, one `u32` of `rng` per element: `1/(1 − rate)` where kept, else 0
/// (`rate` in `[0, 1)`, checked by the callers). Also the attention probabilities' mask.
pub fn draw_mask(rate: f32, rng: &mut ChaCha8Rng, mask: &mut [f32]) {
    let scale = 1.0 / (1.0 - rate);
    let threshold = f64::from(rate);
    for m in mask {
        let u = f64::from(rng.next_u32() >> 8) / f64::from(1u32 << 24);
        *m = if u >= threshold { scale } else { 0.0 };
    }
}

/// Fills `mask` (in order) as [`dropout_forward`] draws its mask, after checking `rate`: the
/// masks of a recurrent layer's dropout.
pub fn fill_mask(rate: f32, rng: &mut ChaCha8Rng, mask: &mut [f32]) -> KernelResult<()> {
    if !(0.0..1.0).contains(&rate) {
        return Err(param_err(OP, format!("rate {rate} outside [0, 1)")));
    }
    draw_mask(rate, rng, mask);
    Ok(())
}

/// Backward: `dx = dy ⊙ mask`.
pub fn dropout_backward(
    dy: ArrayViewD<'_, f32>,
    mask: ArrayViewD<'_, f32>,
    mut dx: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    expect_shape(OP, "mask", mask.shape(), dy.shape())?;
    expect_shape(OP, "dx", dx.shape(), dy.shape())?;
    Zip::from(&mut dx)
        .and(&dy)
        .and(&mask)
        .for_each(|d, &g, &m| *d = g * m);
    Ok(())
}
