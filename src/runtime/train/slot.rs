//! A gradient buffer that several consumers may write: the first writer overwrites it, later
//! writers go through a scratch buffer that is added in.
//!
//! Kernels overwrite their gradient outputs. A value read by two steps (a skip connection, a
//! weight shared by two layers) receives two gradients, so [`GradSlot::target`] hands out the
//! buffer itself the first time in a backward pass and the scratch buffer afterwards, and
//! [`GradSlot::commit`] adds the scratch in. Both buffers are allocated once and reused.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

use super::error::{internal, TrainError};
use crate::runtime::pool;

/// A zeroed array of `shape` in `old`'s memory when its capacity suffices (no allocation and no
/// fresh pages, whose first touch costs more than the arithmetic here): how the trainer's
/// buffers follow a batch of another size, such as an epoch's last, shorter batch.
pub(crate) fn zeroed_reusing(old: Option<ArrayD<f32>>, shape: &[usize]) -> ArrayD<f32> {
    let len = shape.iter().product();
    let mut data = old.map_or_else(Vec::new, |a| a.into_raw_vec_and_offset().0);
    data.clear();
    data.resize(len, 0.0);
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap_or_else(|_| ArrayD::zeros(IxDyn(shape)))
}

/// `dst += src` element-wise, split between the intra-op pool's threads when large (the same
/// bits: each element is one addition).
fn add_parts(dst: &mut [f32], src: &[f32]) {
    pool::zip_parts(dst, src, |d, s| {
        d.iter_mut().zip(s).for_each(|(d, &v)| *d += v);
    });
}

/// One gradient buffer with its accumulation state.
#[derive(Debug, Default, Clone)]
pub(crate) struct GradSlot {
    buf: Option<ArrayD<f32>>,
    scratch: Option<ArrayD<f32>>,
    written: bool,
}

impl GradSlot {
    /// A zeroed slot of `shape`.
    pub(crate) fn zeros(shape: &[usize]) -> Self {
        Self {
            buf: Some(ArrayD::zeros(IxDyn(shape))),
            scratch: None,
            written: false,
        }
    }

    /// The slot zeroed at `shape`, in its own memory when it fits (see [`zeroed_reusing`]).
    pub(crate) fn resized(self, shape: &[usize]) -> Self {
        Self {
            buf: Some(zeroed_reusing(self.buf, shape)),
            scratch: self.scratch,
            written: false,
        }
    }

    /// Starts a new backward pass: nothing written yet.
    pub(crate) fn reset(&mut self) {
        self.written = false;
    }

    /// Whether some step has delivered a gradient in this pass.
    pub(crate) fn is_written(&self) -> bool {
        self.written
    }

    /// The buffer to write the next gradient contribution into; call [`Self::commit`] after.
    pub(crate) fn target(&mut self) -> Result<ArrayViewMutD<'_, f32>, TrainError> {
        let Some(buf) = self.buf.as_mut() else {
            return Err(internal("gradient buffer missing"));
        };
        if !self.written {
            return Ok(buf.view_mut());
        }
        let fits = self
            .scratch
            .as_ref()
            .is_some_and(|s| s.shape() == buf.shape());
        if !fits {
            self.scratch = Some(zeroed_reusing(self.scratch.take(), buf.shape()));
        }
        self.scratch
            .as_mut()
            .map(|a| a.view_mut())
            .ok_or_else(|| internal("scratch buffer missing"))
    }

    /// The buffer itself, to be overwritten without counting as a contribution (a gradient no
    /// one reads, which a kernel computes anyway).
    pub(crate) fn discard_target(&mut self) -> Result<ArrayViewMutD<'_, f32>, TrainError> {
        if self.written {
            return self.target();
        }
        self.buf
            .as_mut()
            .map(|a| a.view_mut())
            .ok_or_else(|| internal("gradient buffer missing"))
    }

    /// Records the contribution written into the last [`Self::target`].
    pub(crate) fn commit(&mut self) {
        if self.written {
            if let (Some(buf), Some(s)) = (self.buf.as_mut(), self.scratch.as_ref()) {
                match (buf.as_slice_mut(), s.as_slice()) {
                    (Some(dst), Some(src)) if dst.len() == src.len() => add_parts(dst, src),
                    _ => *buf += s,
                }
            }
        } else {
            self.written = true;
        }
    }

    /// Adds `g` as one whole contribution: copied into the buffer when it is the first, else
    /// added to it in place. The bits of [`Self::target`], a copy of `g`, then [`Self::commit`]
    /// (the same one addition per element), without the zeroed scratch and the copy into it.
    /// `false` (nothing done) when `g`'s shape is not the buffer's: then use `target`.
    pub(crate) fn contribute(&mut self, g: &ArrayViewD<'_, f32>) -> bool {
        let Some(buf) = self.buf.as_mut().filter(|b| b.shape() == g.shape()) else {
            return false;
        };
        match (buf.as_slice_mut(), g.as_slice()) {
            (Some(dst), Some(src)) if self.written => add_parts(dst, src),
            (Some(dst), Some(src)) => pool::zip_parts(dst, src, <[f32]>::copy_from_slice),
            _ if self.written => *buf += g,
            _ => buf.assign(g),
        }
        self.written = true;
        true
    }

    /// Zeroes the buffer and marks it written (a parameter no gradient reached).
    pub(crate) fn fill_zero(&mut self) {
        if let Some(b) = self.buf.as_mut() {
            b.fill(0.0);
        }
        self.written = true;
    }

    /// The gradient, once written.
    pub(crate) fn view(&self) -> Option<ArrayViewD<'_, f32>> {
        self.buf.as_ref().filter(|_| self.written).map(|a| a.view())
    }

    /// Mutable access to the written gradient (clipping, fused activations).
    pub(crate) fn view_mut(&mut self) -> Option<ArrayViewMutD<'_, f32>> {
        if self.written {
            self.buf.as_mut().map(|a| a.view_mut())
        } else {
            None
        }
    }

    /// Takes the buffer out (to read it while writing other slots); put it back with
    /// [`Self::put`].
    pub(crate) fn take(&mut self) -> Option<ArrayD<f32>> {
        self.buf.take()
    }

    /// Puts a buffer taken with [`Self::take`] back.
    pub(crate) fn put(&mut self, buf: ArrayD<f32>) {
        self.buf = Some(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `contribute` gives the bits of `target` + copy + `commit`, large (split between two
    /// threads) and small; a shape that is not the buffer's is refused.
    #[test]
    fn contributions_add_as_target_and_commit_do() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for n in [pool::ZIP_SPLIT_MIN + 3, 10] {
            let a = ArrayD::from_shape_fn(IxDyn(&[n]), |i| (i[0] % 97) as f32 * 0.1);
            let b = ArrayD::from_shape_fn(IxDyn(&[n]), |i| (i[0] % 13) as f32 - 6.5);
            let mut fast = GradSlot::zeros(&[n]);
            let mut slow = GradSlot::zeros(&[n]);
            pool.install(|| {
                for g in [&a, &b] {
                    assert!(fast.contribute(&g.view()));
                    slow.target().unwrap().assign(g);
                    slow.commit();
                }
            });
            let (fast, slow) = (fast.view().unwrap(), slow.view().unwrap());
            assert!(fast
                .iter()
                .zip(slow.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits()));
            assert!(fast
                .iter()
                .zip(a.iter().zip(&b))
                .all(|(&x, (&p, &q))| x.to_bits() == (p + q).to_bits()));
        }
        let mut slot = GradSlot::zeros(&[4]);
        assert!(!slot.contribute(&ArrayD::zeros(IxDyn(&[5])).view()));
        assert!(slot.view().is_none(), "nothing was written");
    }

    #[test]
    fn a_smaller_or_equal_shape_reuses_the_memory_zeroed() {
        let big = ArrayD::from_elem(IxDyn(&[4, 3]), 7.0f32);
        let at = big.as_ptr();
        let small = zeroed_reusing(Some(big), &[3, 3]);
        assert_eq!(small.shape(), &[3, 3]);
        assert_eq!(small.as_ptr(), at, "the memory was reused");
        assert!(small.iter().all(|&v| v == 0.0));
        // Back to the larger shape: still the same memory (its capacity stayed).
        let back = zeroed_reusing(Some(small), &[2, 6]);
        assert_eq!(back.as_ptr(), at);
        assert_eq!(back.shape(), &[2, 6]);
        assert!(back.iter().all(|&v| v == 0.0));
        // Nothing to reuse, or too small: a fresh zeroed array.
        let fresh = zeroed_reusing(None, &[5]);
        assert_eq!(fresh.as_slice().unwrap(), &[0.0; 5]);
        let grown = zeroed_reusing(Some(fresh), &[64]);
        assert_eq!(grown.len(), 64);
        assert!(grown.iter().all(|&v| v == 0.0));
    }
}
