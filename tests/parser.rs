//! The parser on every construct of the language, and on random input.

// Test code: a failed unwrap is a failed test; parsed numbers are compared exactly on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp
)]

use modelc::diag::FileId;
use modelc::syntax::ast::{Dim, ExprKind, Item, Stmt};
use modelc::syntax::{parse, Limits, Parsed};
use proptest::prelude::*;

fn ok(text: &str) -> Parsed {
    let p = parse(FileId::default(), text, &Limits::default());
    assert!(p.diagnostics.is_empty(), "{text}\n{:#?}", p.diagnostics);
    p
}

fn codes(text: &str) -> Vec<&'static str> {
    parse(FileId::default(), text, &Limits::default())
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect()
}

#[test]
fn model_signature_with_dtypes_symbols_and_output() {
    let p = ok("model M(image: f32[N, 28, 28, 1], ids: i64[B, T]) -> f32[N, 10] {\n  dense(10)\n}");
    let Item::Model(m) = &p.file.items[0] else {
        panic!()
    };
    assert_eq!(m.name.name, "M");
    assert_eq!(m.inputs.len(), 2);
    assert_eq!(m.inputs[0].ty.dtype.name, "f32");
    assert!(matches!(&m.inputs[0].ty.dims[0], Dim::Symbol(s) if s.name == "N"));
    assert!(matches!(m.inputs[0].ty.dims[1], Dim::Fixed(28, _)));
    assert_eq!(m.inputs[1].ty.dtype.name, "i64");
    assert_eq!(m.output.as_ref().unwrap().dims.len(), 2);
    // Spans point at the source text.
    assert_eq!(
        &"model M(image: f32[N, 28, 28, 1]"[m.inputs[0].span.start..m.inputs[0].span.end],
        "image: f32[N, 28, 28, 1]"
    );
}

#[test]
fn output_type_is_optional_and_inputs_may_be_empty_or_trailing_comma() {
    let p = ok("model A(x: f32[N, 4],) { dense(1) }\nmodel B() { dense(1) }");
    let Item::Model(a) = &p.file.items[0] else {
        panic!()
    };
    assert!(a.output.is_none());
    let Item::Model(b) = &p.file.items[1] else {
        panic!()
    };
    assert!(b.inputs.is_empty());
}

#[test]
fn sequential_lines_let_and_pipes() {
    let src = "model R(x: f32[N, 16, 16, 8]) -> f32[N, 3] {
    let h = x |> conv2d(8, kernel: 3, padding: same) |> batch_norm() |> relu()
    let h = h
        |> conv2d(8, kernel: 3, padding: same)
        |> batch_norm()
    add(h, x) |> relu() |> global_avg_pool2d() |> dense(3, activation: softmax)
}";
    let p = ok(src);
    let Item::Model(m) = &p.file.items[0] else {
        panic!()
    };
    assert_eq!(m.body.len(), 3);
    let Stmt::Let { name, value, .. } = &m.body[0] else {
        panic!()
    };
    assert_eq!(name.name, "h");
    let ExprKind::Pipe { head, stages } = &value.kind else {
        panic!()
    };
    assert!(matches!(&head.kind, ExprKind::Name(n) if n.name == "x"));
    assert_eq!(
        stages
            .iter()
            .map(|c| c.callee.name.as_str())
            .collect::<Vec<_>>(),
        ["conv2d", "batch_norm", "relu"]
    );
    assert_eq!(stages[0].positional().count(), 1);
    assert!(
        matches!(stages[0].keyword("padding").unwrap().value.kind, ExprKind::Name(ref n) if n.name == "same")
    );
    // A pipe continued on the next lines is one statement.
    let Stmt::Let { value, .. } = &m.body[1] else {
        panic!()
    };
    let ExprKind::Pipe { stages, .. } = &value.kind else {
        panic!()
    };
    assert_eq!(stages.len(), 2);
    let Stmt::Expr(e) = &m.body[2] else { panic!() };
    let ExprKind::Pipe { head, stages } = &e.kind else {
        panic!()
    };
    let ExprKind::Call(add) = &head.kind else {
        panic!()
    };
    assert_eq!(add.callee.name, "add");
    assert_eq!(add.args.len(), 2);
    assert_eq!(stages.len(), 3);
}

#[test]
fn numbers_fractions_exponents_negatives_strings_lists_booleans() {
    let p = ok(r#"train M on D as Fast {
    optimizer adam(lr: 1e-3, beta1: 0.9, amsgrad: false)
    schedule  cosine(steps: 1000, alpha: -2.5E+1)
    metrics   [accuracy, mae]
    tag       "a \"quoted\"\tname\\"
    scale     1/255
    axis      -1
}"#);
    let Item::Train(t) = &p.file.items[0] else {
        panic!()
    };
    assert_eq!(t.model.name, "M");
    assert_eq!(t.data.name, "D");
    assert_eq!(t.alias.as_ref().unwrap().name, "Fast");
    let num = |i: usize, key: &str| -> (f64, Option<i64>) {
        let s = &t.settings[i];
        let arg = s
            .keyword(key)
            .map_or_else(|| &s.args[0].value, |a| &a.value);
        match &arg.kind {
            ExprKind::Number(n) => (n.value, n.int),
            ExprKind::Call(c) => match &c.keyword(key).unwrap().value.kind {
                ExprKind::Number(n) => (n.value, n.int),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    };
    let ExprKind::Call(adam) = &t.settings[0].args[0].value.kind else {
        panic!()
    };
    assert!(
        matches!(adam.keyword("lr").unwrap().value.kind, ExprKind::Number(n) if n.value == 1e-3 && n.int.is_none())
    );
    assert!(matches!(
        adam.keyword("amsgrad").unwrap().value.kind,
        ExprKind::Bool(false)
    ));
    let ExprKind::Call(cos) = &t.settings[1].args[0].value.kind else {
        panic!()
    };
    assert!(
        matches!(cos.keyword("steps").unwrap().value.kind, ExprKind::Number(n) if n.int == Some(1000))
    );
    assert!(
        matches!(cos.keyword("alpha").unwrap().value.kind, ExprKind::Number(n) if n.value == -25.0)
    );
    assert!(matches!(&t.settings[2].args[0].value.kind, ExprKind::List(items) if items.len() == 2));
    assert!(
        matches!(&t.settings[3].args[0].value.kind, ExprKind::Str(s) if s == "a \"quoted\"\tname\\")
    );
    assert_eq!(num(4, "scale"), (1.0 / 255.0, None));
    assert_eq!(num(5, "axis"), (-1.0, Some(-1)));
}

#[test]
fn data_block_settings_with_keyword_lists_and_pipes() {
    let p = ok(r#"data Digits {
    source  csv("data/digits.csv", label: "target")
    map     reshape(8, 8, 1) |> scale(1/16) |> resize(28, 28)
    augment rotate(degrees: 10) |> crop(28, padding: 2)
    split   validation: 0.2, seed: 7
    shuffle seed: 42
    batch   64
}"#);
    let Item::Data(d) = &p.file.items[0] else {
        panic!()
    };
    let keys: Vec<_> = d.settings.iter().map(|s| s.key.name.as_str()).collect();
    assert_eq!(
        keys,
        ["source", "map", "augment", "split", "shuffle", "batch"]
    );
    assert!(
        matches!(&d.settings[1].args[0].value.kind, ExprKind::Pipe { stages, .. } if stages.len() == 2)
    );
    assert_eq!(d.settings[3].args.len(), 2);
    assert_eq!(
        d.settings[3]
            .keyword("seed")
            .unwrap()
            .name
            .as_ref()
            .unwrap()
            .name,
        "seed"
    );
}

#[test]
fn comments_nest_and_can_sit_anywhere() {
    let p = ok("/* outer /* inner */ still outer */\nmodel M(x: f32[N, 4]) { // trailing\n  dense(1) /* after */\n  // own line\n}\n");
    assert_eq!(p.file.items.len(), 1);
}

#[test]
fn keywords_are_not_names() {
    assert_eq!(codes("model let(x: f32[N, 4]) { dense(1) }"), ["E0100"]);
    assert_eq!(
        codes("model M(x: f32[N, 4]) { let data = dense(1) }"),
        ["E0100"]
    );
    // ... but names may start with a keyword.
    ok("model M(x: f32[N, 4]) { let dataset = dense(1)\n dataset }");
}

#[test]
fn recovery_reports_every_broken_line_and_keeps_good_blocks() {
    let src = "model A(x: f32[N, 4]) {\n  dense(3 4)\n  dense(2)\n  relu(,)\n}\nmodel B(x: f32[N, 4]) { dense(1) }\n";
    let p = parse(FileId::default(), src, &Limits::default());
    assert_eq!(p.diagnostics.len(), 2, "{:#?}", p.diagnostics);
    assert_eq!(p.file.items.len(), 2);
    let Item::Model(a) = &p.file.items[0] else {
        panic!()
    };
    assert_eq!(a.body.len(), 1, "the good line survives");
}

#[test]
fn error_cap_limits_the_number_of_reports() {
    let mut src = String::from("model A(x: f32[N, 4]) {\n");
    for _ in 0..500 {
        src.push_str("  dense(3 4)\n");
    }
    src.push('}');
    let limits = Limits {
        max_errors: 50,
        ..Limits::default()
    };
    assert_eq!(
        parse(FileId::default(), &src, &limits).diagnostics.len(),
        50
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = parse(FileId::default(), text, &Limits::default());
        }
    }

    #[test]
    fn random_token_soup_never_panics(tokens in proptest::collection::vec(prop::sample::select(vec![
        "model", "data", "train", "on", "as", "let", "M", "x", "f32", "N", "dense", "(", ")", "[", "]",
        "{", "}", ",", ":", "=", "|>", "->", "1", "-2.5", "1e-3", "1/255", "\"s\"", "true", "\n", " ",
        "//c\n", "/*c*/", "\"", "/*",
    ]), 0..80)) {
        let text: String = tokens.concat();
        let p = parse(FileId::default(), &text, &Limits::default());
        for d in &p.diagnostics {
            for l in &d.labels {
                prop_assert!(l.span.start <= l.span.end && l.span.end <= text.len());
            }
        }
    }
}
