//! The parser on every construct of the language (AST snapshots in `tests/parser/`), its
//! behaviour on errors (keywords, recovery, the error cap), and on random input.

// Test code: a failed unwrap is a failed test; parsed numbers are compared exactly on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_cmp
)]

use modelc::diag::FileId;
use modelc::syntax::ast::Item;
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

/// AST snapshots: every `tests/parser/NAME.model` printed by `modelc compile NAME.model --emit
/// ast` (RON, spans included) must equal `NAME.ast` beside it. They pin the tree each
/// construct parses to: signatures with dtypes and symbolic dims, optional output types and
/// trailing commas, `let` and multi-line pipes, every literal form (fractions, exponents,
/// negatives, escaped strings, lists, booleans), data-block settings and keyword lists, and
/// comments that leave no trace. Regenerate with `MODELC_BLESS=1 cargo test --test parser`,
/// then review the diff.
#[test]
fn ast_snapshots() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cases: Vec<_> = std::fs::read_dir(root.join("tests/parser"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "model"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "found {} cases", cases.len());
    let bless = std::env::var_os("MODELC_BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let rel = case.strip_prefix(root).unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_modelc"))
            .current_dir(root)
            .args(["compile", "--emit", "ast"])
            .arg(rel)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            rel.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        // The snapshot is the library's tree: parsing the file here gives no error either.
        ok(&std::fs::read_to_string(case).unwrap());
        let got = String::from_utf8(o.stdout).unwrap();
        let snapshot = case.with_extension("ast");
        if bless {
            std::fs::write(&snapshot, &got).unwrap();
            continue;
        }
        if std::fs::read_to_string(&snapshot).unwrap_or_default() != got {
            failures.push(format!("--- {} differs; got:\n{got}", rel.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
