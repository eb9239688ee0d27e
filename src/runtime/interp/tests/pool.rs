//! The intra-op pool in a batch-1 forward pass: the seed CNN's conv products split between
//! the pool's threads (rows for the second conv, columns for the third), call after call
//! while the workers spin between sections, give the one-thread bits every time, and the
//! workers really ran parts.

use super::*;

#[test]
fn batch_one_forward_passes_on_the_pool_give_the_serial_bits_every_call() {
    let plan = compile_with(zoo::seed_cnn().unwrap(), true);
    let weights = || random_weights(&plan, 9);
    let x = random_input(&[1, 28, 28, 1], 31);
    let serial = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| {
            let mut interp = Interpreter::new(&plan, weights()).unwrap();
            interp.run(&[TensorRef::F32(x.view())]).unwrap()
        });
    assert!(serial[0].iter().any(|&v| v != 0.0));
    for threads in [2, 3] {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut interp = Interpreter::new(&plan, weights()).unwrap();
                let before = crate::runtime::pool::worker_parts();
                for call in 0..200 {
                    let out = interp.run(&[TensorRef::F32(x.view())]).unwrap();
                    assert_eq!(out, serial, "call {call} on {threads} threads");
                }
                // Two split products per pass: the workers took some of their parts.
                assert!(crate::runtime::pool::worker_parts() > before);
            });
    }
}
