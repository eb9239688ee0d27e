//! Embedding lookup: gather rows of a `[V, D]` table for integer ids, and its scatter-add
//! backward.
//!
//! `ids: [...]` (i32 or i64) → `out: [..., D]`. An id outside `0..V` is a
//! [`KernelError::IdOutOfRange`], never a panic. Backward overwrites `dtable` with the sum of
//! the output gradients of every position holding each id.

use ndarray::{ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD};

use super::error::{expect_shape, KernelError, KernelResult};
use super::linalg::{flat, flat_mut};

const OP: &str = "embedding";

/// An integer type usable as an embedding id.
pub trait EmbeddingId: Copy {
    /// The id widened to `i64`.
    fn to_i64(self) -> i64;
}

impl EmbeddingId for i32 {
    fn to_i64(self) -> i64 {
        i64::from(self)
    }
}

impl EmbeddingId for i64 {
    fn to_i64(self) -> i64 {
        self
    }
}

/// The table row of `id` (at flat `position`), or [`KernelError::IdOutOfRange`].
pub(super) fn row_index<I: EmbeddingId>(
    id: I,
    position: usize,
    vocab: usize,
) -> KernelResult<usize> {
    let id = id.to_i64();
    usize::try_from(id)
        .ok()
        .filter(|&r| r < vocab)
        .ok_or(KernelError::IdOutOfRange {
            id,
            position,
            vocab,
        })
}

fn output_shape(ids: &[usize], dim: usize) -> Vec<usize> {
    let mut s = ids.to_vec();
    s.push(dim);
    s
}

/// `out[..., :] = table[ids[...], :]`.
pub fn embedding_forward<I: EmbeddingId>(
    ids: ArrayViewD<'_, I>,
    table: ArrayView2<'_, f32>,
    mut out: ArrayViewMutD<'_, f32>,
) -> KernelResult<()> {
    let (vocab, dim) = table.dim();
    expect_shape(OP, "out", out.shape(), &output_shape(ids.shape(), dim))?;
    let ts = flat(OP, "table", &table)?;
    let os = flat_mut(OP, "out", &mut out)?;
    for (position, (&id, dst)) in ids.iter().zip(os.chunks_exact_mut(dim.max(1))).enumerate() {
        let r = row_index(id, position, vocab)?;
        dst.copy_from_slice(&ts[r * dim..(r + 1) * dim]);
    }
    Ok(())
}

/// `dtable[id] = Σ dy[positions with id]`; other rows zero.
pub fn embedding_backward<I: EmbeddingId>(
    ids: ArrayViewD<'_, I>,
    dy: ArrayViewD<'_, f32>,
    mut dtable: ArrayViewMut2<'_, f32>,
) -> KernelResult<()> {
    let (vocab, dim) = dtable.dim();
    expect_shape(OP, "dy", dy.shape(), &output_shape(ids.shape(), dim))?;
    let gs = flat(OP, "dy", &dy)?;
    let ts = flat_mut(OP, "dtable", &mut dtable)?;
    ts.fill(0.0);
    for (position, (&id, g)) in ids.iter().zip(gs.chunks_exact(dim.max(1))).enumerate() {
        let r = row_index(id, position, vocab)?;
        for (t, &v) in ts[r * dim..(r + 1) * dim].iter_mut().zip(g) {
            *t += v;
        }
    }
    Ok(())
}
