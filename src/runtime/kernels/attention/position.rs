//! Position embedding (Keras-hub's PositionEmbedding, added to its input): `out[n, t] = x[n, t]
//! + table[t]` over `[N, T, d]` with a `[max_length, d]` table, `T ≤ max_length`; backward sums
//! the output gradient over the batch into the table's first `T` rows and zeroes the others.

use crate::runtime::kernels::error::{checked_product, shape_err, KernelError, KernelResult};

/// Position embedding forward: `out[n, t] = x[n, t] + table[t]` over `[N, T, d]` (`out` may
/// already hold `x`: pass `x` as `None`).
pub fn position_forward(
    x: Option<&[f32]>,
    table: &[f32],
    (t, d): (usize, usize),
    out: &mut [f32],
) -> KernelResult<()> {
    const OP: &str = "position_embedding";
    let sample = checked_product(OP, &[t, d])?;
    if table.len() < sample || sample == 0 || !out.len().is_multiple_of(sample) {
        return Err(shape_err(
            OP,
            format!(
                "{} values over a table of {} for T {t}, d {d}",
                out.len(),
                table.len()
            ),
        ));
    }
    if let Some(x) = x {
        if x.len() != out.len() {
            return Err(KernelError::Shape {
                op: OP,
                detail: "input and output sizes differ".into(),
            });
        }
        out.copy_from_slice(x);
    }
    let rows = &table[..sample];
    for s in out.chunks_exact_mut(sample) {
        s.iter_mut().zip(rows).for_each(|(o, &p)| *o += p);
    }
    Ok(())
}

/// Position embedding backward: `dtable[t] = Σ_n dy[n, t]` for `t < T`, zero for the rows
/// beyond (`dx = dy` is the caller's copy).
pub fn position_backward(
    dy: &[f32],
    (t, d): (usize, usize),
    dtable: &mut [f32],
) -> KernelResult<()> {
    const OP: &str = "position_embedding";
    let sample = checked_product(OP, &[t, d])?;
    if dtable.len() < sample || sample == 0 || !dy.len().is_multiple_of(sample) {
        return Err(shape_err(OP, "gradient sizes do not fit the table"));
    }
    dtable.fill(0.0);
    for s in dy.chunks_exact(sample) {
        dtable[..sample]
            .iter_mut()
            .zip(s)
            .for_each(|(g, &v)| *g += v);
    }
    Ok(())
}
