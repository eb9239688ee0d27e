//! The VS Code TextMate grammar (`editors/vscode/syntaxes/modelc.tmLanguage.json`) scopes every
//! token of every shipped spec and of the parser's and formatter's test specs, tokenized as
//! VS Code does it (vscode-textmate with the Oniguruma engine, under node). Runs where node
//! and npm are installed (installing the two packages into `editors/vscode/node_modules` when
//! they are missing); prints why it is skipped otherwise.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn works(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn specs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["specs", "tests/parser", "tests/fmt"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "model") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_textmate_grammar_scopes_every_token_of_every_spec() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vscode = root.join("editors/vscode");
    if !works("node") || !works("npm") {
        println!("skipped: node and npm are needed to run vscode-textmate");
        return;
    }
    let installed = ["vscode-textmate", "vscode-oniguruma"]
        .iter()
        .all(|p| vscode.join("node_modules").join(p).is_dir());
    if !installed {
        let o = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--no-package-lock",
                "--include=dev",
            ])
            .current_dir(&vscode)
            .output()
            .unwrap();
        if !o.status.success() {
            println!(
                "skipped: `npm install` in editors/vscode failed (no registry?):\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
    }
    let files = specs(root);
    assert!(files.len() >= 7, "{files:?}");
    let o = Command::new("node")
        .arg("test/grammar.test.js")
        .args(&files)
        .current_dir(&vscode)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains(&format!("{} specs", files.len())) && out.contains("every one scoped"),
        "{out}"
    );
    // The check can fail: a character no rule covers is reported with its place.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.model");
    std::fs::write(&bad, "model M(x: f32[N, 4]) {\n    dense(2) @\n}\n").unwrap();
    let o = Command::new("node")
        .arg("test/grammar.test.js")
        .arg(&bad)
        .current_dir(&vscode)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("bad.model:2:14: no scope for \"@\""), "{err}");
}
