//! `modelc check --watch`: check, then poll the files' modification times and sizes and check
//! again when one changes (a file added below a folder or removed counts). Each round clears
//! the terminal first (only when stderr is one), so the screen shows the current state; a clean
//! round is one line. Ctrl-C (or SIGTERM) ends the loop with status 130, as `train` does.
//!
//! Polling needs no dependency and no platform watcher; at 4 polls a second, each a `stat` per
//! file, it costs nothing noticeable for the few hundred specs a project has.

use super::inputs::{self, Input};
use super::{check_inputs, CheckArgs};
use crate::cli::output::Output;
use crate::diag::{codes, Diagnostic, Format, SourceMap};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Time between two looks at the files.
const POLL: Duration = Duration::from_millis(250);

/// What a round saw of one file: its modification time and size (`None`: unreadable).
type Stamp = (PathBuf, Option<(SystemTime, u64)>);

/// Runs the watch loop until interrupted; returns 130.
pub fn run(args: &CheckArgs, out: &Output) -> u8 {
    if args.files.iter().any(|p| p.as_os_str() == "-") {
        let d = Diagnostic::error(codes::IO_USAGE, "`--watch` cannot watch standard input")
            .help("give files or folders to watch");
        return super::super::common::report(out, &SourceMap::new(), vec![d]);
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupt);
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let mut last: Option<Vec<Stamp>> = None;
    let mut last_error: Option<String> = None;
    while !interrupt.load(Ordering::SeqCst) {
        match inputs::expand(&args.files) {
            Ok(found) => {
                let now = stamps(&found);
                if last.as_ref() != Some(&now) {
                    clear_screen(args.format);
                    check_inputs(args, out, &found, "; watching for changes (Ctrl-C stops)");
                    last = Some(now);
                    last_error = None;
                }
            }
            Err(d) => {
                if last_error.as_deref() != Some(d.message.as_str()) {
                    clear_screen(args.format);
                    last_error = Some(d.message.clone());
                    out.diagnostics(&SourceMap::new(), &[d]);
                    last = None;
                }
            }
        }
        std::thread::sleep(POLL);
    }
    130
}

fn stamps(found: &[Input]) -> Vec<Stamp> {
    found
        .iter()
        .filter_map(|i| match i {
            Input::File(p) => Some(p),
            Input::Stdin => None,
        })
        .map(|p| {
            let meta = std::fs::metadata(p).ok();
            let stamp = meta.and_then(|m| m.modified().ok().map(|t| (t, m.len())));
            (p.clone(), stamp)
        })
        .collect()
}

/// Clears the terminal (human output on a terminal only: a log or a pipe keeps every round).
fn clear_screen(format: Format) {
    let mut err = std::io::stderr();
    if format == Format::Human && err.is_terminal() {
        let _ = err.write_all(b"\x1b[2J\x1b[H");
        let _ = err.flush();
    }
}
