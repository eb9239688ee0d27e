//! `modelc explain CODE | LAYER | layers`: the explanation page of a diagnostic code, a layer's
//! signature (its arguments, what they accept and their defaults), or the list of layers.

use super::output::Output;
use crate::diag::{self, suggest};
use crate::ops::{describe, keras_names, layer as layers};
use clap::Args;
use std::fmt::Write as _;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as E0104, a layer such as conv2d, or `layers` for every layer;
    /// without one, lists every code.
    pub code: Option<String>,
}

/// Runs `explain`; returns the exit status.
pub fn run(args: &ExplainArgs) -> u8 {
    let Some(topic) = args.code.as_deref().map(str::trim) else {
        let mut text = String::new();
        for info in diag::all_codes() {
            let _ = writeln!(text, "{}  {}", info.code, info.title);
        }
        Output::stdout(&text);
        return 0;
    };
    if let Some(info) = diag::lookup(topic) {
        Output::stdout(&format!(
            "{}: {}\n\n{}",
            info.code, info.title, info.explanation
        ));
        return 0;
    }
    if topic == "layers" {
        let mut text = String::new();
        for spec in layers::layers() {
            let _ = writeln!(text, "{}", describe::synopsis(spec));
        }
        Output::stdout(&text);
        return 0;
    }
    if let Some(spec) = layers::lookup(topic) {
        Output::stdout(&describe::page(spec));
        return 0;
    }
    if let Some(spec) = keras_names::modelc_name(topic).and_then(layers::lookup) {
        Output::stdout(&format!(
            "`{topic}` is a Keras or PyTorch class name; the layer here is `{}`\n\n{}",
            spec.name,
            describe::page(spec)
        ));
        return 0;
    }
    let mut msg = format!("error: `{topic}` is neither a modelc diagnostic code nor a layer\n");
    let codes: Vec<&str> = diag::all_codes().map(|i| i.code.as_str()).collect();
    let known = codes.iter().copied().chain(layers::names());
    if let Some(close) = suggest::closest(topic, known) {
        let _ = writeln!(msg, "\nhelp: did you mean `{close}`?");
    }
    msg.push_str(
        "\n`modelc explain` with no argument lists every code; `modelc explain layers` every layer\n",
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
    2
}
