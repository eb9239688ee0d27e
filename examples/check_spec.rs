//! Checks a spec with the library and prints its diagnostics, as `modelc check` does.
//!
//! `cargo run --example check_spec -- specs/seed_cnn.model`

use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};
use modelc::diag::{self, RenderOptions, SourceMap};
use modelc::syntax::{self, Limits};
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: check_spec FILE.model");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut map = SourceMap::new();
    let file = map.add(path, text.clone());
    let parsed = syntax::parse(file, &text, &Limits::default());
    let mut diags = parsed.diagnostics;
    if !diags.iter().any(diag::Diagnostic::is_error) {
        diags.extend(modelc::check::check_file(file, &parsed.file).diagnostics);
    }
    diag::sort(&mut diags);
    let mut err = StandardStream::stderr(ColorChoice::Auto);
    if let Err(e) = diag::render(&mut err, &map, &diags, RenderOptions::default()) {
        eprintln!("cannot write diagnostics: {e}");
    }
    println!(
        "{} item(s), {} diagnostic(s)",
        parsed.file.items.len(),
        diags.len()
    );
    ExitCode::from(diag::exit_status(&diags))
}
