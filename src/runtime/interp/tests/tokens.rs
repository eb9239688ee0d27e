//! Token-id models through the interpreter: an embedding + LSTM classifier, an id outside the
//! vocabulary reported at its batch position under the embedding's name whether or not the
//! embedding was folded into the recurrent layer, and the folded projection's size limit.

use super::*;

#[test]
fn lstm_classifier_runs_and_refuses_out_of_range_tokens() {
    let sizes = zoo::TextSizes {
        vocab: 20,
        embed: 4,
        units: &[3, 5],
        seq: 6,
        classes: 3,
    };
    let plan = compile_with(zoo::lstm_classifier(sizes).unwrap(), true);
    let mut it = Interpreter::new(&plan, init_weights(&plan, 11).unwrap()).unwrap();
    let ids = Array::from_shape_fn((2, 6), |(n, t)| (n * 7 + t * 3) as i64 % 20).into_dyn();
    let y = it.run(&[TensorRef::I64(ids.view())]).unwrap();
    assert_eq!(y[0].shape(), &[2, 3]);
    for row in y[0].rows() {
        assert!((row.sum() - 1.0).abs() < 1e-6);
    }
    let bad = ArrayD::from_elem(IxDyn(&[1, 6]), 20i32);
    let e = it.run(&[TensorRef::I32(bad.view())]).unwrap_err();
    assert_eq!(e.to_diagnostic().code.as_str(), "E0805", "{e}");
}

#[test]
fn a_token_outside_the_vocabulary_is_reported_at_its_batch_position_folded_or_not() {
    let sizes = zoo::TextSizes {
        vocab: 30,
        embed: 4,
        units: &[5, 3],
        seq: 7,
        classes: 2,
    };
    let graph = zoo::lstm_classifier(sizes).unwrap();
    let folded = compile_with(graph.clone(), true);
    let plain = compile_with(graph, false);
    assert_eq!(folded.steps[0].op.kind(), "embedded_lstm");
    assert_eq!(plain.steps[0].op.kind(), "embedding");
    // Batch 10 on 3 threads: the bad id sits in the last slice (samples 7..10), whose own
    // positions start at 0; the report counts from the start of the batch, as the embedding's,
    // and names the embedding layer in both plans.
    let mut ids =
        ndarray::Array2::<i64>::from_shape_fn((10, 7), |(n, t)| ((n * 7 + t) % 30) as i64);
    ids[[8, 3]] = 30;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    for plan in [&folded, &plain] {
        let mut it = Interpreter::new(plan, random_weights(plan, 2)).unwrap();
        let err = pool.install(|| it.run(&[TensorRef::I64(ids.view().into_dyn())]));
        assert_eq!(
            err.unwrap_err(),
            RunError::TokenOutOfRange {
                step: "embedding".into(),
                id: 30,
                position: 8 * 7 + 3,
                vocab: 30,
            }
        );
    }
}

#[test]
fn a_folded_projection_is_computed_at_load_and_refused_past_the_size_limit() {
    let sizes = zoo::TextSizes {
        vocab: 9,
        embed: 4,
        units: &[256],
        seq: 3,
        classes: 2,
    };
    let mut plan = compile_with(zoo::lstm_classifier(sizes).unwrap(), true);
    let ix = |name: &str| plan.params.iter().position(|p| p.name == name).unwrap();
    let (table, projection) = (ix("embedding.embeddings"), ix("embedding.embeddings+lstm"));
    let w = random_weights(&plan, 3);
    // Row 2 of the table times the kernel, plus the bias.
    let e = &w.entries()[table].value;
    let k = &w.entries()[ix("lstm.kernel")].value;
    let b = &w.entries()[ix("lstm.bias")].value;
    let p = &w.entries()[projection].value;
    assert_eq!(p.shape(), [9, 1024]);
    for j in [0, 300, 1023] {
        let want: f32 = (0..4).map(|f| e[[2, f]] * k[[f, j]]).sum::<f32>() + b[[j]];
        assert!((p[[2, j]] - want).abs() < 1e-6, "column {j}");
    }
    // A plan (tampered: the pass stops at the limit) whose table would pass 64 MiB is refused
    // before the table is allocated.
    let rows = (crate::passes::MAX_PROJECTION_BYTES / 4096) as usize + 1;
    plan.params[table].shape = vec![rows, 4];
    plan.params[projection].shape = vec![rows, 1024];
    let Err(WeightsError::PlanMismatch(m)) = init_weights(&plan, 1) else {
        panic!("an oversized projection was computed");
    };
    assert!(m.contains("projection table is larger than"), "{m}");
}
