//! The panic hook: a panic is a bug in modelc, never the user's fault. The hook prints one
//! `error: internal error: ...` message (the panic's text and location, where to report it, the
//! version) to stderr and ends the process with status 101, whichever thread panicked.
//!
//! `modelc __internal-panic` (hidden) panics on purpose so that tests can check all of this on
//! the real binary.

use std::io::Write;

/// Exit status of an internal error (Rust's own status for a panic).
pub const INTERNAL_ERROR_STATUS: i32 = 101;

/// Where bugs are reported: the package's repository when Cargo.toml names one.
fn report_to() -> &'static str {
    match option_env!("CARGO_PKG_REPOSITORY") {
        Some(url) if !url.is_empty() => url,
        _ => "the modelc issue tracker",
    }
}

/// The message for a panic with this payload text and location (`file:line:column`).
pub fn internal_error_message(payload: &str, location: Option<&str>) -> String {
    let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
    format!(
        "error: internal error: modelc panicked{at}: {payload}\n\
         note: this is a bug in modelc, not a problem in your spec or data\n\
         help: please report this at {} with the command and the files it read (modelc {})\n",
        report_to(),
        env!("CARGO_PKG_VERSION")
    )
}

/// Installs the hook; `cli::main` calls this before anything else.
pub fn install() {
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
        // Nothing better can be done if stderr itself is gone.
        let _ = std::io::stderr().lock().write_all(message.as_bytes());
        // A panic on a worker thread (data loader, rayon) must end the run too, with the same
        // status as one on the main thread.
        std::process::exit(INTERNAL_ERROR_STATUS);
    }));
}

/// `modelc __internal-panic`: a deliberate panic, for testing the hook end to end.
#[allow(clippy::panic)]
pub fn deliberate_panic() -> u8 {
    panic!("deliberate panic requested by `modelc __internal-panic`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_the_panic_the_place_and_the_version() {
        let m = internal_error_message("index out of bounds", Some("src/x.rs:3:9"));
        assert!(m.starts_with(
            "error: internal error: modelc panicked at src/x.rs:3:9: index out of bounds\n"
        ));
        assert!(m.contains(&format!("(modelc {})", env!("CARGO_PKG_VERSION"))));
        assert!(m.contains("please report this at"));
    }
}
