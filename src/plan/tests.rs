use super::*;
use crate::passes::testing::chain;

fn cnn() -> Graph {
    chain(&[
        "in:28,28,1",
        "conv:32",
        "relu",
        "maxpool:2",
        "conv:64",
        "relu",
        "maxpool:2",
        "conv:128",
        "relu",
        "maxpool:2",
        "flatten",
        "dense:128",
        "relu",
        "dense:10",
        "softmax",
    ])
}

fn plan(g: Graph, mode: Mode, options: &PassOptions) -> ExecutionPlan {
    compile(g, mode, options, "hash".into()).unwrap()
}

#[test]
fn optimized_cnn_plan_fuses_and_shares_buffers() {
    let p = plan(cnn(), Mode::Infer, &PassOptions::default());
    assert!(
        p.pass_log.contains(&"conv + relu fused".to_string()),
        "{:?}",
        p.pass_log
    );
    assert!(
        p.pass_log.contains(&"dense + relu fused".to_string()),
        "{:?}",
        p.pass_log
    );
    assert_eq!(p.steps.len(), 10);
    validate(&p).unwrap();
    // Per sample, f32: one buffer per value = 784+21632+5408+7744+1600+1152+128+128+128+10+10.
    assert_eq!(p.memory.one_buffer_per_value_bytes_per_sample, 4 * 38724);
    // Liveness: the input and conv outputs alternate between two buffers, the softmax runs in
    // place and the flatten is a view.
    assert_eq!(p.memory.views, 1);
    assert_eq!(p.memory.in_place, 1);
    assert!(p.memory.peak_bytes_per_sample < p.memory.one_buffer_per_value_bytes_per_sample);
}

#[test]
fn o0_runs_no_pass() {
    let options = PassOptions {
        no_optimize: true,
        ..PassOptions::default()
    };
    let p = plan(cnn(), Mode::Infer, &options);
    assert_eq!(p.steps.len(), 14);
    assert!(p.pass_log.is_empty());
    assert_eq!(
        p.memory.peak_bytes_per_sample,
        p.memory.one_buffer_per_value_bytes_per_sample
    );
}

#[test]
fn training_plan_keeps_batch_norm_and_dropout() {
    let g = chain(&[
        "in:8,8,3", "conv:4", "bn", "relu", "dropout", "flatten", "dense:2",
    ]);
    let infer = plan(g.clone(), Mode::Infer, &PassOptions::default());
    let train = plan(g, Mode::Train, &PassOptions::default());
    let kinds = |p: &ExecutionPlan| p.steps.iter().map(|s| s.op.kind()).collect::<Vec<_>>();
    assert_eq!(kinds(&infer), ["conv2d", "flatten", "dense"]);
    assert_eq!(
        kinds(&train),
        [
            "conv2d",
            "batch_norm",
            "relu",
            "dropout",
            "flatten",
            "dense"
        ]
    );
    assert!(infer.pass_log.iter().any(|l| l == "bn folded into conv"));
    assert_eq!(train.memory.in_place, 0);
}

#[test]
fn disable_pass_and_stop_after() {
    let g = chain(&["in:8,8,3", "conv:4", "bn", "relu"]);
    let options = PassOptions {
        disabled: vec!["fold-batch-norm".into()],
        ..PassOptions::default()
    };
    let p = plan(g.clone(), Mode::Infer, &options);
    assert_eq!(
        p.steps.iter().map(|s| s.op.kind()).collect::<Vec<_>>(),
        ["conv2d", "batch_norm", "relu"]
    );
    let options = PassOptions {
        stop_after: Some("fold-batch-norm".into()),
        ..PassOptions::default()
    };
    let p = plan(g, Mode::Infer, &options);
    assert_eq!(
        p.steps.iter().map(|s| s.op.kind()).collect::<Vec<_>>(),
        ["conv2d", "relu"]
    );
}

#[test]
fn ron_round_trip_is_identical_and_deterministic() {
    let p = plan(cnn(), Mode::Infer, &PassOptions::default());
    let text = p.to_ron().unwrap();
    let back = ExecutionPlan::from_ron(&text).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.to_ron().unwrap(), text);
    assert_eq!(
        plan(cnn(), Mode::Infer, &PassOptions::default())
            .to_ron()
            .unwrap(),
        text
    );
}

#[test]
fn tampered_plans_are_refused() {
    let p = plan(cnn(), Mode::Infer, &PassOptions::default());
    let text = p.to_ron().unwrap();
    // Truncated.
    assert!(matches!(
        ExecutionPlan::from_ron(&text[..text.len() / 2]),
        Err(PlanError::Syntax(_))
    ));
    // Another format version.
    let other = text.replacen("format_version: 1", "format_version: 7", 1);
    assert_eq!(
        ExecutionPlan::from_ron(&other),
        Err(PlanError::Version {
            found: 7,
            expected: 1
        })
    );
    // A hand-edited shape that no longer agrees with the op.
    let mut q = p.clone();
    q.values[1].fact.dims[3] = ir::Dim::Known(33);
    assert!(matches!(validate(&q), Err(PlanError::Inconsistent(m)) if m.contains("conv")));
    // A buffer out of range.
    let mut q = p.clone();
    q.values[2].buffer = 99;
    assert!(matches!(validate(&q), Err(PlanError::Inconsistent(m)) if m.contains("no buffer")));
    // Two live values in one buffer.
    let mut q = p.clone();
    let b = q.values[0].buffer;
    q.values[1].buffer = b;
    assert!(validate(&q).is_err());
    // A step reading a value that does not exist.
    let mut q = p;
    q.steps[0].inputs[0] = 1000;
    assert!(
        matches!(validate(&q), Err(PlanError::Inconsistent(m)) if m.contains("does not exist"))
    );
}
