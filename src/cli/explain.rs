//! `modelc explain CODE`: the explanation page of a diagnostic code.

use super::output::Output;
use crate::diag;
use clap::Args;
use std::fmt::Write as _;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as E0104; without one, lists every code.
    pub code: Option<String>,
}

/// Runs `explain`; returns the exit status.
pub fn run(args: &ExplainArgs) -> u8 {
    match &args.code {
        None => {
            let mut text = String::new();
            for info in diag::all_codes() {
                let _ = writeln!(text, "{}  {}", info.code, info.title);
            }
            Output::stdout(&text);
            0
        }
        Some(code) => {
            if let Some(info) = diag::lookup(code.trim()) {
                Output::stdout(&format!(
                    "{}: {}\n\n{}",
                    info.code, info.title, info.explanation
                ));
                0
            } else {
                let mut msg = format!("error: `{code}` is not a modelc diagnostic code");
                msg.push_str("\n\n`modelc explain` with no code lists them all\n");
                let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
                2
            }
        }
    }
}
