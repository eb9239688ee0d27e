//! Tests of lowering, on ASTs built by hand (each node gets its own span, so a test can check
//! exactly where a diagnostic points).

#![allow(clippy::float_cmp)] // the values compared are exact literals
use super::*;
use crate::data::spec::{ColumnRef, Fitted, LabelRead, SourceKind};
use crate::data::typing::{element_type, DType, LabelKind};
use crate::diag::codes::{
    DATA_ARGUMENT_RANGE, DATA_SHAPE_UNKNOWN, DATA_STEP_MISMATCH, DATA_UNKNOWN_ARGUMENT,
    DATA_UNKNOWN_SOURCE,
};
use crate::syntax::ast::{Arg, DataDef, Ident, Number};
use std::cell::Cell;

thread_local!(static NEXT: Cell<usize> = const { Cell::new(0) });

fn span() -> Span {
    NEXT.with(|n| {
        let s = n.get();
        n.set(s + 10);
        Span::new(s, s + 5)
    })
}

fn id(name: &str) -> Ident {
    Ident {
        name: name.into(),
        span: span(),
    }
}

fn e(kind: ExprKind) -> Expr {
    Expr { kind, span: span() }
}

fn int(v: i64) -> Expr {
    e(ExprKind::Number(Number {
        value: v as f64,
        int: Some(v),
    }))
}

fn num(v: f64) -> Expr {
    e(ExprKind::Number(Number {
        value: v,
        int: None,
    }))
}

fn s(v: &str) -> Expr {
    e(ExprKind::Str(v.into()))
}

fn pos(value: Expr) -> Arg {
    Arg {
        name: None,
        span: value.span,
        value,
    }
}

fn kw(name: &str, value: Expr) -> Arg {
    Arg {
        name: Some(id(name)),
        span: value.span,
        value,
    }
}

fn call(name: &str, args: Vec<Arg>) -> Call {
    Call {
        callee: id(name),
        args,
        span: span(),
    }
}

fn pipe(calls: Vec<Call>) -> Expr {
    let mut it = calls.into_iter();
    let head = it.next().unwrap();
    let head = Expr {
        span: head.span,
        kind: ExprKind::Call(head),
    };
    e(ExprKind::Pipe {
        head: Box::new(head),
        stages: it.collect(),
    })
}

fn setting(key: &str, args: Vec<Arg>) -> Setting {
    Setting {
        key: id(key),
        args,
        span: span(),
    }
}

fn block(settings: Vec<Setting>) -> DataDef {
    DataDef {
        name: id("Digits"),
        settings,
        span: span(),
    }
}

fn lower(def: &DataDef) -> (Option<PipelineSpec>, Vec<Diagnostic>) {
    lower_data_def(FileId::from_index(0), def)
}

/// The LANGUAGE.md example, with the feature count declared.
fn digits_block() -> DataDef {
    block(vec![
        setting(
            "source",
            vec![pos(e(ExprKind::Call(call(
                "csv",
                vec![
                    pos(s("data/digits.csv")),
                    kw("label", s("target")),
                    kw("classes", int(10)),
                ],
            ))))],
        ),
        setting(
            "map",
            vec![pos(pipe(vec![
                call("reshape", vec![pos(int(8)), pos(int(8)), pos(int(1))]),
                call("scale", vec![pos(num(1.0 / 16.0))]),
                call("resize", vec![pos(int(28)), pos(int(28))]),
            ]))],
        ),
        setting(
            "augment",
            vec![pos(pipe(vec![
                call("rotate", vec![kw("degrees", int(10))]),
                call("crop", vec![pos(int(28)), kw("padding", int(2))]),
            ]))],
        ),
        setting(
            "split",
            vec![kw("validation", num(0.2)), kw("seed", int(7))],
        ),
        setting("shuffle", vec![kw("seed", int(42))]),
        setting("batch", vec![pos(int(64))]),
    ])
}

#[test]
fn the_language_example_lowers_and_types() {
    let (spec, diags) = lower(&digits_block());
    assert!(diags.is_empty(), "{diags:?}");
    let spec = spec.unwrap();
    assert_eq!(spec.preprocess.len(), 3);
    assert_eq!(
        spec.preprocess[1].op,
        Transform::Scale {
            factor: 0.0625,
            offset: 0.0
        }
    );
    assert_eq!(
        spec.augment[1].op,
        Augment::Crop {
            size: 28,
            padding: 2
        }
    );
    assert_eq!(spec.split.as_ref().unwrap().validation, 0.2);
    assert_eq!(spec.split.as_ref().unwrap().seed, 7);
    assert_eq!(spec.shuffle.as_ref().unwrap().seed, 42);
    assert_eq!(spec.batch.size, 64);
    let ty = element_type(&spec).unwrap();
    assert_eq!(ty.dtype, DType::F32);
    assert_eq!(ty.shape, vec![28, 28, 1]);
    let label = ty.label.unwrap();
    assert_eq!(label.kind, LabelKind::Class { classes: Some(10) });
    assert_eq!(label.dtype, DType::I64);
    assert!(label.shape.is_empty());
}

#[test]
fn spec_round_trips_through_ron() {
    let (spec, _) = lower(&digits_block());
    let mut spec = spec.unwrap();
    spec.preprocess.push(Step {
        op: Transform::Standardize {
            fitted: Some(Fitted {
                shift: vec![0.5],
                scale: vec![2.0],
            }),
        },
        span: Span::new(1, 2),
    });
    let text = ron::to_string(&spec).unwrap();
    let back: PipelineSpec = ron::from_str(&text).unwrap();
    assert_eq!(back, spec);
}

fn only(diags: &[Diagnostic]) -> &Diagnostic {
    assert_eq!(diags.len(), 1, "{diags:?}");
    &diags[0]
}

#[test]
fn misspelt_setting_suggests_the_keyword() {
    let mut def = digits_block();
    def.settings[5] = setting("bacth", vec![pos(int(64))]);
    let key_span = def.settings[5].key.span;
    let (spec, diags) = lower(&def);
    assert!(spec.is_none());
    let unknown = diags
        .iter()
        .find(|d| d.code == DATA_UNKNOWN_SETTING)
        .unwrap();
    assert_eq!(unknown.primary_label().unwrap().span, key_span);
    assert_eq!(unknown.help.as_deref(), Some("did you mean `batch`?"));
    // the block now lacks a batch line, which is reported too
    assert!(diags.iter().any(|d| d.code == DATA_MISSING_ARGUMENT));
}

#[test]
fn misspelt_transform_source_and_argument_suggest_fixes() {
    let mut def = digits_block();
    def.settings[1] = setting(
        "map",
        vec![pos(e(ExprKind::Call(call("standardise", vec![]))))],
    );
    let (_, diags) = lower(&def);
    let d = only(&diags);
    assert_eq!(d.code, DATA_UNKNOWN_STEP);
    assert_eq!(d.help.as_deref(), Some("did you mean `standardize`?"));

    let mut def = digits_block();
    def.settings[0] = setting(
        "source",
        vec![pos(e(ExprKind::Call(call("cvs", vec![pos(s("x.csv"))]))))],
    );
    let (_, diags) = lower(&def);
    let d = only(&diags);
    assert_eq!(d.code, DATA_UNKNOWN_SOURCE);
    assert_eq!(d.help.as_deref(), Some("did you mean `csv`?"));

    let mut def = digits_block();
    let lable = kw("lable", s("target"));
    let lable_span = lable.name.as_ref().unwrap().span;
    def.settings[0] = setting(
        "source",
        vec![pos(e(ExprKind::Call(call(
            "csv",
            vec![pos(s("x.csv")), lable],
        ))))],
    );
    let (_, diags) = lower(&def);
    let d = only(&diags);
    assert_eq!(d.code, DATA_UNKNOWN_ARGUMENT);
    assert_eq!(d.primary_label().unwrap().span, lable_span);
    assert_eq!(d.help.as_deref(), Some("did you mean `label`?"));
}

#[test]
fn augmentation_under_map_is_pointed_out() {
    let mut def = digits_block();
    def.settings[1] = setting(
        "map",
        vec![pos(e(ExprKind::Call(call("rotate", vec![pos(int(5))]))))],
    );
    let (_, diags) = lower(&def);
    let d = only(&diags);
    assert_eq!(d.code, DATA_UNKNOWN_STEP);
    assert_eq!(d.help.as_deref(), Some("move it to an `augment` line"));
}

#[test]
fn out_of_range_and_mistyped_arguments_point_at_the_value() {
    for (bad, code) in [
        (num(1.2), DATA_ARGUMENT_RANGE),
        (num(0.0), DATA_ARGUMENT_RANGE),
        (s("0.2"), DATA_ARGUMENT_TYPE),
    ] {
        let mut def = digits_block();
        let bad_span = bad.span;
        def.settings[3] = setting("split", vec![kw("validation", bad)]);
        let (spec, diags) = lower(&def);
        assert!(spec.is_none());
        let d = only(&diags);
        assert_eq!(d.code, code);
        assert_eq!(d.primary_label().unwrap().span, bad_span);
    }
    for bad in [int(0), int(-3)] {
        let mut def = digits_block();
        def.settings[5] = setting("batch", vec![pos(bad)]);
        let (_, diags) = lower(&def);
        assert_eq!(only(&diags).code, DATA_ARGUMENT_RANGE);
    }
    let mut def = digits_block();
    def.settings[5] = setting("batch", vec![pos(num(6.5))]);
    let (_, diags) = lower(&def);
    assert_eq!(only(&diags).code, DATA_ARGUMENT_TYPE);
}

#[test]
fn missing_required_argument_and_duplicates_are_reported() {
    let mut def = digits_block();
    def.settings[0] = setting(
        "source",
        vec![pos(e(ExprKind::Call(call(
            "regression",
            vec![kw("n", int(10))],
        ))))],
    );
    let (_, diags) = lower(&def);
    let d = only(&diags);
    assert_eq!(d.code, DATA_MISSING_ARGUMENT);
    assert!(d.message.contains("`features`"), "{}", d.message);

    let mut def = digits_block();
    def.settings.push(setting("batch", vec![pos(int(32))]));
    let (_, diags) = lower(&def);
    let d = only(&diags);
    assert_eq!(d.code, DATA_DUPLICATE);
    assert_eq!(d.labels.len(), 2);
}

#[test]
fn typing_errors_point_at_the_step() {
    // resize on flat csv rows
    let mut def = digits_block();
    let resize = call("resize", vec![pos(int(28)), pos(int(28))]);
    let resize_span = resize.span;
    def.settings[1] = setting("map", vec![pos(e(ExprKind::Call(resize)))]);
    def.settings[0] = setting(
        "source",
        vec![pos(e(ExprKind::Call(call(
            "csv",
            vec![
                pos(s("x.csv")),
                kw("label", s("target")),
                kw("features", int(64)),
            ],
        ))))],
    );
    let (spec, diags) = lower(&def);
    assert!(diags.is_empty());
    let errs = element_type(&spec.unwrap()).unwrap_err();
    // resize fails, and so do rotate and crop after it (still rank 1)
    assert_eq!(errs[0].span, resize_span);
    assert_eq!(errs[0].code, DATA_STEP_MISMATCH);

    // reshape to the wrong element count
    let mut def = digits_block();
    def.settings[0] = setting(
        "source",
        vec![pos(e(ExprKind::Call(call(
            "csv",
            vec![
                pos(s("x.csv")),
                kw("label", s("target")),
                kw("features", int(63)),
            ],
        ))))],
    );
    let (spec, _) = lower(&def);
    let errs = element_type(&spec.unwrap()).unwrap_err();
    assert!(
        errs[0].message.contains("needs 64 values"),
        "{}",
        errs[0].message
    );
}

#[test]
fn unknown_csv_width_without_reshape_is_not_statically_typed() {
    let def = block(vec![
        setting(
            "source",
            vec![pos(e(ExprKind::Call(call(
                "csv",
                vec![pos(s("x.csv")), kw("label", int(0))],
            ))))],
        ),
        setting("batch", vec![pos(int(8))]),
    ]);
    let (spec, diags) = lower(&def);
    assert!(diags.is_empty());
    let errs = element_type(&spec.unwrap()).unwrap_err();
    assert_eq!(errs[0].code, DATA_SHAPE_UNKNOWN);
}

#[test]
fn series_window_and_tokens_type_statically() {
    let def = block(vec![
        setting(
            "source",
            vec![pos(e(ExprKind::Call(call(
                "sine",
                vec![kw("n", int(100)), kw("noise", num(0.1))],
            ))))],
        ),
        setting(
            "map",
            vec![pos(pipe(vec![
                call("moving_average", vec![pos(int(3))]),
                call("window", vec![pos(int(12))]),
            ]))],
        ),
        setting("batch", vec![pos(int(8))]),
    ]);
    let (spec, diags) = lower(&def);
    assert!(diags.is_empty(), "{diags:?}");
    let ty = element_type(&spec.unwrap()).unwrap();
    assert_eq!(ty.shape, vec![12, 1]);
    assert_eq!(ty.label.unwrap().shape, vec![1]);

    let def = block(vec![
        setting(
            "source",
            vec![pos(e(ExprKind::Call(call(
                "tokens",
                vec![
                    kw("n", int(100)),
                    kw("length", int(10)),
                    kw("vocab", int(20)),
                    kw("classes", int(3)),
                ],
            ))))],
        ),
        setting(
            "map",
            vec![pos(pipe(vec![
                call("pad", vec![pos(int(16))]),
                call("one_hot", vec![]),
            ]))],
        ),
        setting("batch", vec![pos(int(8))]),
    ]);
    let (spec, diags) = lower(&def);
    assert!(diags.is_empty(), "{diags:?}");
    let ty = element_type(&spec.unwrap()).unwrap();
    assert_eq!(ty.dtype, DType::I64);
    assert_eq!(ty.shape, vec![16]);
    let label = ty.label.unwrap();
    assert_eq!(label.kind, LabelKind::OneHot { classes: 3 });
    assert_eq!(label.shape, vec![3]);
}

#[test]
fn token_vocabulary_must_exceed_the_class_count() {
    let tokens = call(
        "tokens",
        vec![
            kw("n", int(10)),
            kw("length", int(4)),
            kw("vocab", int(3)),
            kw("classes", int(3)),
        ],
    );
    let tokens_span = tokens.span;
    let def = block(vec![
        setting("source", vec![pos(e(ExprKind::Call(tokens)))]),
        setting("batch", vec![pos(int(2))]),
    ]);
    let (spec, diags) = lower(&def);
    assert!(spec.is_none());
    let d = only(&diags);
    assert_eq!(d.code, DATA_ARGUMENT_RANGE);
    assert_eq!(d.primary_label().unwrap().span, tokens_span);
}

/// `csv(..., label: ["digit", "parity", "size"], classes: [10, 2, 0], features: 64)` and `map`.
fn label_list_block(map: Vec<Call>) -> DataDef {
    let list = e(ExprKind::List(vec![s("digit"), s("parity"), s("size")]));
    let mut settings = vec![setting(
        "source",
        vec![pos(e(ExprKind::Call(call(
            "csv",
            vec![
                pos(s("x.csv")),
                kw("label", list),
                kw("classes", e(ExprKind::List(vec![int(10), int(2), int(0)]))),
                kw("features", int(64)),
            ],
        ))))],
    )];
    if !map.is_empty() {
        settings.push(setting("map", vec![pos(pipe(map))]));
    }
    settings.push(setting("batch", vec![pos(int(8))]));
    block(settings)
}

#[test]
fn a_label_list_gives_one_label_set_per_column_each_read_by_its_count() {
    let (spec, diags) = lower(&label_list_block(Vec::new()));
    assert!(diags.is_empty(), "{diags:?}");
    let spec = spec.unwrap();
    let SourceKind::Csv(c) = &spec.source.kind else {
        panic!("csv")
    };
    assert_eq!(c.label, Some(ColumnRef::Name("digit".into())));
    assert_eq!(c.label_read, LabelRead::Class { classes: Some(10) });
    assert_eq!(c.more_labels.len(), 2);
    assert_eq!(c.more_labels[0].read, LabelRead::Class { classes: Some(2) });
    assert_eq!(c.more_labels[1].column, ColumnRef::Name("size".into()));
    assert_eq!(c.more_labels[1].read, LabelRead::Value);
    assert_eq!(c.label_spans.len(), 3);
    let ty = element_type(&spec).unwrap();
    assert_eq!(ty.shape, vec![64]);
    assert_eq!(
        ty.label.unwrap().kind,
        LabelKind::Class { classes: Some(10) }
    );
    let kinds: Vec<LabelKind> = ty.more_labels.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        [LabelKind::Class { classes: Some(2) }, LabelKind::Value]
    );
    // `one_hot` turns one label set; with several it is refused.
    let (spec, _) = lower(&label_list_block(vec![call("one_hot", Vec::new())]));
    let errors = element_type(&spec.unwrap()).unwrap_err();
    assert_eq!(errors[0].code, DATA_STEP_MISMATCH);
    assert!(
        errors[0].message.contains("label set per output"),
        "{errors:?}"
    );
}
