//! Keras's GlobalAveragePooling1D over a padding mask (`embedding(..., mask_zero: true)`):
//! the mean of the kept steps, `Σ_t keep·x / Σ_t keep`, and its gradient (`dy / count` into
//! each kept step, zero into masked ones). A sequence with no kept step pools to zeros (Keras
//! divides 0 by 0 there and gives NaN).

use super::error::{shape_err, KernelResult};

const OP: &str = "global_avg_pool1d";

/// `out[n, c]` = the mean over the kept steps of `x[n, t, c]` (`x: [N, T, C]`, `keep: [N·T]`).
pub fn masked_mean_forward(
    x: &[f32],
    (n, t, c): (usize, usize, usize),
    keep: &[bool],
    out: &mut [f32],
) -> KernelResult<()> {
    check(x.len(), (n, t, c), keep, out.len())?;
    for s in 0..n {
        let row = &mut out[s * c..(s + 1) * c];
        row.fill(0.0);
        let mut count = 0u32;
        for step in 0..t {
            if keep[s * t + step] {
                count += 1;
                let at = (s * t + step) * c;
                row.iter_mut()
                    .zip(&x[at..at + c])
                    .for_each(|(o, &v)| *o += v);
            }
        }
        if count > 0 {
            #[allow(clippy::cast_precision_loss)] // a count of steps
            let count = count as f32;
            for o in row.iter_mut() {
                *o /= count;
            }
        }
    }
    Ok(())
}

/// `dx[n, t, c]` = `dy[n, c] / count` at a kept step, 0 at a masked one.
pub fn masked_mean_backward(
    dy: &[f32],
    (n, t, c): (usize, usize, usize),
    keep: &[bool],
    dx: &mut [f32],
) -> KernelResult<()> {
    check(dx.len(), (n, t, c), keep, dy.len())?;
    for s in 0..n {
        let kept = keep[s * t..(s + 1) * t].iter().filter(|&&k| k).count();
        #[allow(clippy::cast_precision_loss)] // a count of steps
        let scale = if kept == 0 { 0.0 } else { 1.0 / kept as f32 };
        for step in 0..t {
            let at = (s * t + step) * c;
            let g = &dy[s * c..(s + 1) * c];
            let k = if keep[s * t + step] { scale } else { 0.0 };
            dx[at..at + c]
                .iter_mut()
                .zip(g)
                .for_each(|(d, &v)| *d = v * k);
        }
    }
    Ok(())
}

fn check(
    x_len: usize,
    (n, t, c): (usize, usize, usize),
    keep: &[bool],
    out_len: usize,
) -> KernelResult<()> {
    let fits = n.checked_mul(t).is_some_and(|nt| {
        keep.len() == nt && nt.checked_mul(c) == Some(x_len) && n.checked_mul(c) == Some(out_len)
    });
    if fits {
        Ok(())
    } else {
        Err(shape_err(
            OP,
            format!(
                "a padding mask of {} steps over {x_len} values into {out_len}",
                keep.len()
            ),
        ))
    }
}
