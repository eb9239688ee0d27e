//! `modelc lsp`: runs the language server (`crate::lsp`) on standard input and output, the way
//! editors start one. Logs and internal errors go to stderr, which editors show in their
//! server log; stdout carries only the protocol.

use super::hook::internal_error_message;
use clap::Args;
use std::io::Write;

#[derive(Debug, Args)]
pub struct LspArgs {
    /// Accepted for editors that pass it (VS Code's client does); stdio is the only transport.
    #[arg(long, hide = true)]
    pub stdio: bool,
}

/// Runs the server until the client says `exit`; returns the exit status (0, or 1 when the
/// client broke the protocol).
pub fn run(_args: &LspArgs) -> u8 {
    // A panic inside a request is caught by the server and answered with an error reply: the
    // hook only logs it (the CLI's own hook would end the process).
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        let message = internal_error_message(&payload, location.as_deref());
        let _ = std::io::stderr().lock().write_all(message.as_bytes());
    }));
    let (connection, io_threads) = lsp_server::Connection::stdio();
    let outcome = crate::lsp::serve(&connection);
    drop(connection);
    let joined = io_threads.join();
    match (outcome, joined) {
        (Ok(()), Ok(())) => 0,
        (Err(e), _) => {
            let _ = writeln!(std::io::stderr(), "modelc lsp: {e}");
            1
        }
        (Ok(()), Err(e)) => {
            let _ = writeln!(std::io::stderr(), "modelc lsp: {e}");
            1
        }
    }
}
