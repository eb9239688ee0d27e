//! `cargo bench --bench data`: augmentation throughput on 28x28x1 images (rotate ±15°,
//! 28x28 crop with padding 2, horizontal flip p = 0.5), in images per second on the default
//! rayon pool (all cores), plus a one-thread figure for reference.

#![allow(clippy::expect_used)] // a benchmark may stop on a broken setup

use modelc::data::augment::augment_batch;
use modelc::data::spec::{Augment, Step};
use modelc::diag::Span;
use ndarray::ArrayD;
use std::time::Instant;

fn main() {
    let steps: Vec<Step<Augment>> = [
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
    ]
    .into_iter()
    .map(|op| Step {
        op,
        span: Span::default(),
    })
    .collect();
    let batch = 256;
    let values: Vec<f32> = (0..batch * 784).map(|i| (i % 255) as f32 / 255.0).collect();
    let images = ArrayD::from_shape_vec(vec![batch, 28, 28, 1], values).expect("shape");
    let indices: Vec<usize> = (0..batch).collect();
    for threads in [rayon::current_num_threads(), 1] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            // warm up, then time whole epochs of 100 batches
            let _ = augment_batch(&steps, &images, &indices, 1, 0);
            let rounds = 100;
            let start = Instant::now();
            let mut checksum = 0f32;
            for epoch in 0..rounds {
                let out = augment_batch(&steps, &images, &indices, 1, epoch).expect("augment");
                checksum += out[[0, 14, 14, 0]];
            }
            let secs = start.elapsed().as_secs_f64();
            let per_sec = (rounds as usize * batch) as f64 / secs;
            println!(
                "augment rotate+crop+flip 28x28: {per_sec:.0} images/s on {threads} thread(s) \
                 ({} images in {secs:.3} s, checksum {checksum:.3})",
                rounds as usize * batch
            );
        });
    }
}
