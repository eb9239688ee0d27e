//! Augmentation (training only): random but reproducible flips, rotations, zooms, padded crops
//! and noise, applied per sample in parallel.
//!
//! Input: a batch of samples `[b, ...]`, the data set index of each, the pipeline seed and the
//! epoch. Output: the augmented batch. Invariant: the random numbers for a sample come from its
//! own ChaCha8 stream keyed by (seed, epoch, sample index), so the result is the same for every
//! thread count, batch size and batch order.

use super::image::{crop_padded, flip, rotate, zoom, Dims};
use super::rng::{Purpose, Stream};
use super::samples::with_count;
use super::spec::{Augment, Step};
use crate::diag::codes::DATA_STEP_MISMATCH;
use crate::diag::Diagnostic;
use ndarray::ArrayD;
use rayon::prelude::*;

/// The per-sample shape after the augmentations (crops change it).
pub fn output_shape(steps: &[Step<Augment>], input: &[usize]) -> Result<Vec<usize>, Diagnostic> {
    let mut shape = input.to_vec();
    for step in steps {
        if !matches!(step.op, Augment::Noise { .. }) {
            {
                let &[h, w, c] = shape.as_slice() else {
                    return Err(Diagnostic::error(
                        DATA_STEP_MISMATCH,
                        format!(
                            "augmentation needs [h, w, c] images, found samples of shape {shape:?}"
                        ),
                    ));
                };
                if let Augment::Crop { size, padding } = step.op {
                    if size > h.min(w).saturating_add(padding.saturating_mul(2)) {
                        return Err(Diagnostic::error(
                            DATA_STEP_MISMATCH,
                            format!("a {size}x{size} crop does not fit {h}x{w} images padded by {padding}"),
                        ));
                    }
                    shape = vec![size, size, c];
                }
            }
        }
    }
    Ok(shape)
}

/// Augments one sample in place of `cur` (whose shape is `shape`), using `scratch` as the
/// second buffer; `shape` is updated by crops.
fn augment_one(
    steps: &[Step<Augment>],
    rng: &mut Stream,
    cur: &mut Vec<f32>,
    scratch: &mut Vec<f32>,
    shape: &mut Vec<usize>,
) {
    for step in steps {
        let dims = match shape.as_slice() {
            &[h, w, c] => Dims { h, w, c },
            _ => Dims {
                h: 1,
                w: cur.len(),
                c: 1,
            },
        };
        match step.op {
            Augment::Flip {
                horizontal,
                vertical,
                p,
            } => {
                let h = horizontal && rng.uniform() < p;
                let v = vertical && rng.uniform() < p;
                flip(cur, dims, h, v);
            }
            Augment::Rotate { degrees } => {
                let angle = rng.range(-degrees, degrees).to_radians() as f32;
                scratch.resize(cur.len(), 0.0);
                rotate(cur, dims, angle, scratch);
                std::mem::swap(cur, scratch);
            }
            Augment::Zoom { range } => {
                let factor = rng.range(1.0 - range, 1.0 + range) as f32;
                scratch.resize(cur.len(), 0.0);
                zoom(cur, dims, factor, scratch);
                std::mem::swap(cur, scratch);
            }
            Augment::Crop { size, padding } => {
                let top =
                    rng.below((dims.h + 2 * padding + 1).saturating_sub(size) as u64) as usize;
                let left =
                    rng.below((dims.w + 2 * padding + 1).saturating_sub(size) as u64) as usize;
                scratch.resize(size * size * dims.c, 0.0);
                crop_padded(cur, dims, padding, size, top, left, scratch);
                std::mem::swap(cur, scratch);
                *shape = vec![size, size, dims.c];
            }
            Augment::Noise { std } => {
                for v in cur.iter_mut() {
                    *v += (std * rng.normal()) as f32;
                }
            }
        }
    }
}

/// Augments a batch `[b, ...]`; `indices[i]` is sample `i`'s index in the data set.
pub fn augment_batch(
    steps: &[Step<Augment>],
    batch: &ArrayD<f32>,
    indices: &[usize],
    seed: u64,
    epoch: u64,
) -> Result<ArrayD<f32>, Diagnostic> {
    let in_shape = batch.shape().get(1..).unwrap_or(&[]).to_vec();
    if steps.is_empty() {
        return Ok(batch.clone());
    }
    let out_shape = output_shape(steps, &in_shape)?;
    let in_len: usize = in_shape.iter().product();
    let out_len: usize = out_shape.iter().product();
    let src = batch.as_standard_layout();
    let src = src.as_slice().unwrap_or(&[]);
    let mut out = vec![0f32; indices.len() * out_len];
    out.par_chunks_mut(out_len.max(1))
        .zip(src.par_chunks(in_len.max(1)))
        .zip(indices.par_iter())
        .for_each_init(
            || (Vec::new(), Vec::new()),
            |(cur, scratch), ((dst, sample), &index)| {
                cur.clear();
                cur.extend_from_slice(sample);
                let mut shape = in_shape.clone();
                let mut rng = Stream::new(seed, Purpose::Augment, epoch, index as u64);
                augment_one(steps, &mut rng, cur, scratch, &mut shape);
                dst.copy_from_slice(&cur[..dst.len().min(cur.len())]);
            },
        );
    ArrayD::from_shape_vec(with_count(indices.len(), &out_shape), out)
        .map_err(|e| Diagnostic::error(DATA_STEP_MISMATCH, format!("augmented batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;

    fn steps() -> Vec<Step<Augment>> {
        [
            Augment::Rotate { degrees: 15.0 },
            Augment::Crop {
                size: 28,
                padding: 2,
            },
            Augment::Flip {
                horizontal: true,
                vertical: false,
                p: 0.5,
            },
            Augment::Zoom { range: 0.1 },
            Augment::Noise { std: 0.05 },
        ]
        .into_iter()
        .map(|op| Step {
            op,
            span: Span::default(),
        })
        .collect()
    }

    fn images(n: usize) -> ArrayD<f32> {
        let v: Vec<f32> = (0..n * 28 * 28)
            .map(|i| ((i * 37) % 101) as f32 / 100.0)
            .collect();
        ArrayD::from_shape_vec(vec![n, 28, 28, 1], v).unwrap()
    }

    #[test]
    fn same_result_for_one_and_two_threads_and_any_batching() {
        let x = images(16);
        let idx: Vec<usize> = (100..116).collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| augment_batch(&steps(), &x, &idx, 9, 3).unwrap())
        };
        let one = run(1);
        let two = run(2);
        assert_eq!(one.as_slice().unwrap(), two.as_slice().unwrap());
        // the second half alone, as its own batch, gives the same samples
        let half = x.slice_axis(ndarray::Axis(0), (8..16).into()).to_owned();
        let alone = augment_batch(&steps(), &half, &idx[8..], 9, 3).unwrap();
        assert_eq!(
            alone.as_slice().unwrap(),
            &one.as_slice().unwrap()[8 * 784..]
        );
        // another epoch draws other numbers, and augmentation did change the images
        let other = augment_batch(&steps(), &x, &idx, 9, 4).unwrap();
        assert_ne!(other.as_slice().unwrap(), one.as_slice().unwrap());
        assert_ne!(one.as_slice().unwrap(), x.as_slice().unwrap());
    }

    #[test]
    fn crop_changes_the_shape_and_flip_with_p1_always_mirrors() {
        let x =
            ArrayD::from_shape_vec(vec![1, 2, 3, 1], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let flip = vec![Step {
            op: Augment::Flip {
                horizontal: true,
                vertical: false,
                p: 1.0,
            },
            span: Span::default(),
        }];
        let out = augment_batch(&flip, &x, &[0], 1, 0).unwrap();
        assert_eq!(out.as_slice().unwrap(), &[3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        let crop = vec![Step {
            op: Augment::Crop {
                size: 4,
                padding: 1,
            },
            span: Span::default(),
        }];
        let out = augment_batch(&crop, &x, &[0], 1, 0).unwrap();
        assert_eq!(out.shape(), &[1, 4, 4, 1]);
        // the padded image is 4x5; either 4x4 window drops a padding column, so all values stay
        let kept: f32 = out.iter().sum();
        assert!((kept - 21.0).abs() < 1e-6, "{kept}");
    }
}
