//! `modelc fmt`: the formatter's properties on every `.model` file of the repository and on
//! random syntax trees, golden cases (tests/fmt/NAME.model → NAME.formatted.model, regenerated
//! by `MODELC_BLESS=1`), and the command's contract end to end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelc::diag::{FileId, Span};
use modelc::syntax::ast::{
    Arg, Call, DataDef, Dim, ExperimentDef, ExperimentLine, Expr, ExprKind, File, Ident, Item,
    ModelDef, Number, Param, Select, Setting, Stmt, TensorType, TrainDef, Vary, VaryValue,
};
use modelc::syntax::format::{format_source, print_file};
use modelc::syntax::{parse, Limits};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------------------------------------
// Helpers

fn fmt(text: &str) -> String {
    format_source(FileId::default(), text, &Limits::default())
        .unwrap_or_else(|d| panic!("refused:\n{text}\n{d:#?}"))
}

/// The AST as JSON with every span replaced by null, so trees compare by meaning.
fn meaning(text: &str) -> serde_json::Value {
    let parsed = parse(FileId::default(), text, &Limits::default());
    assert!(!parsed.has_errors(), "{text}\n{:#?}", parsed.diagnostics);
    let mut v = serde_json::to_value(&parsed.file).unwrap();
    strip_spans(&mut v);
    v
}

fn strip_spans(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let is_span = map.len() == 2 && map.contains_key("start") && map.contains_key("end");
            if is_span {
                *v = serde_json::Value::Null;
            } else {
                map.values_mut().for_each(strip_spans);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_spans),
        _ => {}
    }
}

/// The comments of a text, sorted, each with its line ends normalized and trailing blanks of
/// its lines removed (the formatter's only change to a comment). A reference scanner of its own.
fn comments(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if chars[i] == '/' && chars.get(i + 1) == Some(&'/') {
            let start = i;
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
            out.push(chars[start..i].iter().collect::<String>());
        } else if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            let start = i;
            let mut depth = 0;
            loop {
                if chars[i] == '/' && chars[i + 1] == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars[i + 1] == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(chars[start..i].iter().collect::<String>());
        } else {
            i += 1;
        }
    }
    let mut out: Vec<String> = out
        .iter()
        .map(|c| {
            c.replace("\r\n", "\n")
                .replace('\r', "\n")
                .split('\n')
                .map(str::trim_end)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    out.sort();
    out
}

/// Every property the formatter promises, on one text.
fn assert_properties(name: &str, text: &str) {
    let once = fmt(text);
    let twice = fmt(&once);
    assert_eq!(once, twice, "{name}: formatting is not idempotent");
    assert_eq!(
        meaning(text),
        meaning(&once),
        "{name}: meaning changed:\n{once}"
    );
    assert_eq!(
        comments(text),
        comments(&once),
        "{name}: comments changed:\n{once}"
    );
    for line in once.lines() {
        assert_eq!(line, line.trim_end(), "{name}: trailing blanks in {line:?}");
    }
    assert!(
        !once.contains("\n\n\n") && !once.contains("\r\n\r\n\r\n"),
        "{name}"
    );
    let ends_once = once.ends_with('\n') && !once.ends_with("\n\n") && !once.ends_with("\n\r\n");
    assert!(
        once.is_empty() || ends_once,
        "{name}: not exactly one final newline"
    );
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            model_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "model") {
            out.push(p);
        }
    }
}

fn modelc(args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelc"))
        .current_dir(root())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The repository's own files

#[test]
fn shipped_specs_are_already_formatted() {
    let mut files = Vec::new();
    model_files(&root().join("specs"), &mut files);
    assert!(files.len() >= 4);
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        assert_eq!(fmt(&text), text, "{} is not formatted", p.display());
        assert_properties(&p.display().to_string(), &text);
    }
}

#[test]
fn every_model_file_under_tests_that_parses_keeps_its_meaning_and_comments() {
    let mut files = Vec::new();
    model_files(&root().join("tests"), &mut files);
    let mut checked = 0;
    for p in &files {
        let Ok(text) = std::fs::read_to_string(p) else {
            continue;
        };
        if parse(FileId::default(), &text, &Limits::default()).has_errors() {
            continue;
        }
        assert_properties(&p.display().to_string(), &text);
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} files checked");
}

#[test]
fn golden_cases() {
    let dir = root().join("tests/fmt");
    let mut files = Vec::new();
    model_files(&dir, &mut files);
    let inputs: Vec<&PathBuf> = files
        .iter()
        .filter(|p| !p.to_string_lossy().ends_with(".formatted.model"))
        .collect();
    assert!(inputs.len() >= 6);
    let bless = std::env::var_os("MODELC_BLESS").is_some();
    for input in inputs {
        let text = std::fs::read_to_string(input).unwrap();
        let got = fmt(&text);
        let golden = input.with_extension("formatted.model");
        if bless {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap();
        assert_eq!(got, want, "{} differs from its golden", input.display());
        assert_properties(&input.display().to_string(), &text);
        assert_eq!(fmt(&want), want, "{} is not stable", golden.display());
    }
}

#[test]
fn crlf_golden_keeps_crlf_and_bom() {
    let text = std::fs::read_to_string(root().join("tests/fmt/crlf_bom.model")).unwrap();
    assert!(text.starts_with('\u{FEFF}') && text.contains("\r\n"));
    let out = fmt(&text);
    assert!(out.starts_with('\u{FEFF}'));
    assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
}

// ---------------------------------------------------------------------------------------------
// parse(print(ast)) == ast on random trees

fn sp() -> Span {
    Span::default()
}

fn ident_strategy() -> impl Strategy<Value = Ident> {
    prop::sample::select(vec![
        "x", "h", "relu", "dense", "a_1", "_b", "N", "same", "models",
    ])
    .prop_map(|n| Ident {
        name: n.to_string(),
        span: sp(),
    })
}

fn leaf_strategy() -> impl Strategy<Value = Expr> {
    prop_oneof![
        any::<i64>().prop_map(|i| ExprKind::Number(Number {
            value: i as f64,
            int: Some(i)
        })),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| ExprKind::Number(Number {
                value: v,
                int: None
            })),
        "[ab \"\\\\\n\té/]{0,6}".prop_map(ExprKind::Str),
        any::<bool>().prop_map(ExprKind::Bool),
        ident_strategy().prop_map(ExprKind::Name),
    ]
    .prop_map(|kind| Expr { kind, span: sp() })
}

fn call_strategy(inner: BoxedStrategy<Expr>) -> impl Strategy<Value = Call> {
    (
        ident_strategy(),
        prop::collection::vec((prop::option::of(ident_strategy()), inner), 0..4),
    )
        .prop_map(|(callee, args)| Call {
            callee,
            args: args
                .into_iter()
                .map(|(name, value)| Arg {
                    name,
                    value,
                    span: sp(),
                })
                .collect(),
            span: sp(),
        })
}

/// Expressions; `nested_pipe_heads` allows `(a |> f()) |> g()` (not at the start of a line,
/// where `(` would continue a previous line ending in a name as a call).
fn expr_strategy(nested_pipe_heads: bool) -> BoxedStrategy<Expr> {
    leaf_strategy()
        .prop_recursive(3, 24, 4, |inner| {
            let inner = inner.boxed();
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(ExprKind::List),
                call_strategy(inner.clone()).prop_map(ExprKind::Call),
                (
                    inner.clone(),
                    prop::collection::vec(call_strategy(inner.clone()), 1..4)
                )
                    .prop_map(|(head, stages)| ExprKind::Pipe {
                        head: Box::new(head),
                        stages
                    }),
            ]
            .prop_map(|kind| Expr { kind, span: sp() })
        })
        .prop_filter("pipe heads", move |e| {
            nested_pipe_heads
                || !matches!(&e.kind, ExprKind::Pipe { head, .. }
                    if matches!(head.kind, ExprKind::Pipe { .. }))
        })
        .boxed()
}

fn args_strategy(min: usize) -> impl Strategy<Value = Vec<Arg>> {
    prop::collection::vec(
        (prop::option::of(ident_strategy()), expr_strategy(true)),
        min..4,
    )
    .prop_map(|args| {
        args.into_iter()
            .map(|(name, value)| Arg {
                name,
                value,
                span: sp(),
            })
            .collect()
    })
}

fn tensor_type_strategy() -> impl Strategy<Value = TensorType> {
    (
        ident_strategy(),
        prop::collection::vec(
            prop_oneof![
                any::<u64>().prop_map(|n| Dim::Fixed(n, Span::default())),
                ident_strategy().prop_map(Dim::Symbol),
            ],
            0..4,
        ),
    )
        .prop_map(|(dtype, dims)| TensorType {
            dtype,
            dims,
            span: sp(),
        })
}

fn settings_strategy() -> impl Strategy<Value = Vec<Setting>> {
    prop::collection::vec(
        (ident_strategy(), args_strategy(1)).prop_map(|(key, args)| Setting {
            key,
            args,
            span: sp(),
        }),
        0..5,
    )
}

fn item_strategy() -> impl Strategy<Value = Item> {
    let stmt = prop_oneof![
        (ident_strategy(), expr_strategy(false)).prop_map(|(name, value)| Stmt::Let {
            name,
            value,
            span: sp()
        }),
        expr_strategy(false).prop_map(Stmt::Expr),
    ];
    let model = (
        ident_strategy(),
        prop::collection::vec((ident_strategy(), tensor_type_strategy()), 0..3),
        prop::option::of(tensor_type_strategy()),
        prop::collection::vec(stmt, 0..5),
    )
        .prop_map(|(name, inputs, output, body)| {
            Item::Model(ModelDef {
                name,
                inputs: inputs
                    .into_iter()
                    .map(|(name, ty)| Param {
                        name,
                        ty,
                        span: sp(),
                    })
                    .collect(),
                output,
                named_outputs: Vec::new(),
                body,
                span: sp(),
            })
        });
    let data = (ident_strategy(), settings_strategy()).prop_map(|(name, settings)| {
        Item::Data(DataDef {
            name,
            settings,
            span: sp(),
        })
    });
    let train = (
        ident_strategy(),
        ident_strategy(),
        prop::option::of(ident_strategy()),
        settings_strategy(),
    )
        .prop_map(|(model, data, alias, settings)| {
            Item::Train(TrainDef {
                model,
                data,
                alias,
                settings,
                span: sp(),
            })
        });
    prop_oneof![model, data, train, experiment_strategy()]
}

/// A setting key of an experiment: a train setting or a `data.` one.
fn setting_path_strategy() -> impl Strategy<Value = Ident> {
    (any::<bool>(), ident_strategy()).prop_map(|(data, key)| Ident {
        name: if data {
            format!("data.{}", key.name)
        } else {
            key.name
        },
        span: sp(),
    })
}

fn experiment_strategy() -> impl Strategy<Value = Item> {
    let setting = (setting_path_strategy(), args_strategy(1)).prop_map(|(key, args)| {
        ExperimentLine::Setting(Setting {
            key,
            args,
            span: sp(),
        })
    });
    let value = prop_oneof![
        expr_strategy(true).prop_map(|value| VaryValue {
            args: vec![Arg {
                name: None,
                value,
                span: sp(),
            }],
            grouped: false,
            span: sp(),
        }),
        args_strategy(1).prop_map(|args| VaryValue {
            args,
            grouped: true,
            span: sp(),
        }),
    ];
    let vary = (
        prop::collection::vec(setting_path_strategy(), 1..3),
        any::<bool>(),
        prop::collection::vec(value, 0..4),
    )
        .prop_map(|(axes, tied, values)| {
            ExperimentLine::Vary(Vary {
                tied: tied || axes.len() > 1,
                axes,
                values,
                span: sp(),
            })
        });
    let select = (ident_strategy(), ident_strategy()).prop_map(|(goal, metric)| {
        ExperimentLine::Select(Select {
            goal,
            metric,
            span: sp(),
        })
    });
    (
        ident_strategy(),
        prop::collection::vec(prop_oneof![setting, vary, select], 0..5),
    )
        .prop_map(|(name, lines)| {
            Item::Experiment(ExperimentDef {
                name,
                lines,
                span: sp(),
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn printed_random_trees_parse_back_to_themselves(items in prop::collection::vec(item_strategy(), 1..4)) {
        let file = File { items };
        let text = print_file(&file);
        let mut want = serde_json::to_value(&file).unwrap();
        strip_spans(&mut want);
        prop_assert_eq!(meaning(&text), want, "{}", text);
        prop_assert_eq!(fmt(&text), text.clone(), "printer and formatter disagree:\n{}", text);
    }
}

// ---------------------------------------------------------------------------------------------
// The command

const MESSY: &str = "model M(x: f32[N, 4]) {\n  dense( 2 )  // two\n}\n";
const TIDY: &str = "model M(x: f32[N, 4]) {\n    dense(2) // two\n}\n";

fn temp_spec(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn fmt_rewrites_files_in_place_and_leaves_formatted_ones_alone() {
    let dir = tempfile::tempdir().unwrap();
    let messy = temp_spec(&dir, "messy.model", MESSY);
    let tidy = temp_spec(&dir, "tidy.model", TIDY);
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    std::fs::File::options()
        .write(true)
        .open(&tidy)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let o = modelc(
        &["fmt", messy.to_str().unwrap(), tidy.to_str().unwrap()],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), TIDY);
    assert_eq!(std::fs::read_to_string(&tidy).unwrap(), TIDY);
    assert_eq!(std::fs::metadata(&tidy).unwrap().modified().unwrap(), old);
}

#[test]
fn fmt_check_writes_nothing_shows_the_diff_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let messy = temp_spec(&dir, "messy.model", MESSY);
    let o = modelc(&["fmt", "--check", messy.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), MESSY);
    let out = String::from_utf8(o.stdout).unwrap();
    let want = format!(
        "Diff in {} at line 1:\n model M(x: f32[N, 4]) {{\n-  dense( 2 )  // two\n+    dense(2) // two\n }}\n",
        messy.display()
    );
    assert_eq!(out, want);
    let ok = modelc(&["fmt", "--check", "specs/seed_cnn.model"], None);
    assert_eq!(ok.status.code(), Some(0));
    assert!(ok.stdout.is_empty());
}

#[test]
fn fmt_check_passes_on_every_shipped_spec() {
    let mut files = Vec::new();
    model_files(&root().join("specs"), &mut files);
    let mut args = vec!["fmt".to_string(), "--check".to_string()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = modelc(&args, None);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn fmt_formats_stdin_to_stdout() {
    for args in [&["fmt"][..], &["fmt", "-"][..]] {
        let o = modelc(args, Some(MESSY.as_bytes()));
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(String::from_utf8(o.stdout).unwrap(), TIDY);
    }
    let o = modelc(&["fmt", "--check", "-"], Some(MESSY.as_bytes()));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8(o.stdout)
        .unwrap()
        .starts_with("Diff in <stdin> at line 1:"));
}

#[test]
fn bad_input_30_fmt_syntax_error_leaves_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let broken = "model M(x: f32[N, 4]) {\n  dense(2,, )\n}\n";
    let p = temp_spec(&dir, "broken.model", broken);
    let before = std::fs::metadata(&p).unwrap().modified().unwrap();
    let o = modelc(&["fmt", p.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("error[E01"));
    assert_eq!(std::fs::read(&p).unwrap(), broken.as_bytes());
    assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["broken.model"], "no temporary files left");
    // From stdin: diagnostics, nothing on stdout.
    let o = modelc(&["fmt", "--format", "json"], Some(broken.as_bytes()));
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(first["code"].as_str().unwrap().starts_with("E01"), "{out}");
}

#[test]
fn bad_input_30_fmt_twice_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("tests/fmt/comments.model")).unwrap();
    let p = temp_spec(&dir, "c.model", &text);
    let path = p.to_str().unwrap();
    assert_eq!(modelc(&["fmt", path], None).status.code(), Some(0));
    let once = std::fs::read(&p).unwrap();
    assert_ne!(once, text.as_bytes());
    assert_eq!(modelc(&["fmt", path], None).status.code(), Some(0));
    assert_eq!(std::fs::read(&p).unwrap(), once);
    assert_eq!(
        modelc(&["fmt", "--check", path], None).status.code(),
        Some(0)
    );
}

#[test]
fn fmt_reports_unreadable_files_with_status_2() {
    let o = modelc(&["fmt", "no/such/file.model"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("E0900"));
    let o = modelc(&["fmt", "--format", "json", "no/such/file.model"], None);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8(o.stdout).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(v["code"], "E0900");
    let o = modelc(&["fmt", "-", "specs/seed_cnn.model"], None);
    assert_eq!(o.status.code(), Some(2));
}
