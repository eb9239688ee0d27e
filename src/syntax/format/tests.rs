//! Unit tests of the formatter on small texts, each against the expected text written out.

use super::*;
use crate::diag::FileId;

fn fmt(text: &str) -> String {
    match format_source(FileId::default(), text, &Limits::default()) {
        Ok(out) => out,
        Err(d) => panic!("{text}\n{d:#?}"),
    }
}

#[test]
fn spacing_indentation_and_blank_lines_become_canonical() {
    let src = "model  M( x :f32[ N,4 ] )->f32[N,2]{\n\n\n  dense( 2 ,activation:relu )   \n\n\n\n  dense(2)\n\n}\n\n\n\ndata D{\nbatch 4\nsource csv(\"a.csv\")}";
    let want = "model M(x: f32[N, 4]) -> f32[N, 2] {\n    dense(2, activation: relu)\n\n    dense(2)\n}\n\ndata D {\n    batch  4\n    source csv(\"a.csv\")\n}\n";
    assert_eq!(fmt(src), want);
}

#[test]
fn literals_are_kept_as_written() {
    let src = "data D {\n map scale(1/16) |> f(1e-3, -2.5E+1, 007, \"a\\tb\")\n batch 1\n}\n";
    let want =
        "data D {\n    map   scale(1/16) |> f(1e-3, -2.5E+1, 007, \"a\\tb\")\n    batch 1\n}\n";
    assert_eq!(fmt(src), want);
}

#[test]
fn trailing_and_own_line_comments_stay_where_they_were() {
    let src = "// head\n\n\nmodel M(x: f32[N, 4]) { // sig\n  // before\n  dense(2) /* after */\n  dense(2, // why\n   activation: relu)\n  // end\n} // done\n// tail";
    let want = "// head\n\nmodel M(x: f32[N, 4]) { // sig\n    // before\n    dense(2) /* after */\n    dense(2, // why\n        activation: relu)\n    // end\n} // done\n\n// tail\n";
    assert_eq!(fmt(src), want);
    assert_eq!(fmt(want), want);
}

#[test]
fn long_pipes_break_before_each_stage() {
    let stage = "conv2d(16, kernel: 3, padding: same, activation: relu)";
    let src = format!("model M(x: f32[N, 8, 8, 1]) {{\n    let h = x |> {stage} |> {stage} |> batch_norm()\n    h\n}}\n");
    let want = format!("model M(x: f32[N, 8, 8, 1]) {{\n    let h = x\n        |> {stage}\n        |> {stage}\n        |> batch_norm()\n    h\n}}\n");
    assert_eq!(fmt(&src), want);
    assert_eq!(fmt(&want), want);
}

#[test]
fn short_broken_pipes_are_joined() {
    let src = "model M(x: f32[N, 4]) {\n    x\n        |> dense(2)\n        |> relu()\n}\n";
    assert_eq!(
        fmt(src),
        "model M(x: f32[N, 4]) {\n    x |> dense(2) |> relu()\n}\n"
    );
}

#[test]
fn crlf_and_bom_are_kept() {
    let src = "\u{FEFF}model M(x: f32[N, 4]) {\r\n  dense(2) // c\r\n}\r\n";
    assert_eq!(
        fmt(src),
        "\u{FEFF}model M(x: f32[N, 4]) {\r\n    dense(2) // c\r\n}\r\n"
    );
}

#[test]
fn nested_pipe_heads_keep_their_parentheses_and_trailing_commas_go() {
    let src = "model M(x: f32[N, 4],) {\n    (x |> dense(2)) |> relu()\n    concat([a, b,], axis: -1,)\n}\n";
    let want =
        "model M(x: f32[N, 4]) {\n    (x |> dense(2)) |> relu()\n    concat([a, b], axis: -1)\n}\n";
    assert_eq!(fmt(src), want);
}

#[test]
fn syntax_errors_are_refused_with_diagnostics() {
    let Err(diags) = format_source(FileId::default(), "model M( {\n", &Limits::default()) else {
        panic!("a broken file was formatted")
    };
    assert!(diags.iter().any(Diagnostic::is_error));
}

#[test]
fn empty_and_comment_only_files() {
    assert_eq!(fmt(""), "");
    assert_eq!(fmt("\n\n  \n"), "");
    assert_eq!(
        fmt("  // only   \n\n\n/* a\n  b */  \n"),
        "// only\n\n/* a\n  b */\n"
    );
}
