//! The `modelc` binary: everything lives in the library's `cli` module, but for the allocator.
//!
//! The global allocator is the system's, wrapped so that the allocator is never the one to say
//! no to a user: when the system refuses memory (an exhausted `ulimit -v`, a machine out of
//! memory), the wrapper writes an E0904 diagnostic ("out of memory: could not allocate N bytes")
//! and exits with status 2, instead of Rust's "memory allocation of N bytes failed" and an abort.
//! The message is formatted into a stack buffer and written to the raw file descriptors, so
//! reporting allocates nothing: as text on stderr, and with `--format json` also as one JSON
//! diagnostic line on stdout (where the JSON stream goes). An allocation the library asked for
//! inside `modelc::util::alloc::fallible` (a `try_reserve` of a user-sized array) gets the
//! refusal back instead, and reports E0904 itself, saying what the memory was for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

#[global_allocator]
static ALLOCATOR: ReportingAllocator = ReportingAllocator;

/// Whether the run was started with `--format json`, recorded before anything else runs.
static JSON: AtomicBool = AtomicBool::new(false);

/// Set by the first thread that reports; any other that fails meanwhile waits for the exit.
static REPORTING: AtomicBool = AtomicBool::new(false);

fn main() -> std::process::ExitCode {
    JSON.store(json_requested(std::env::args_os()), Ordering::Relaxed);
    modelc::cli::main()
}

/// `--format json` or `--format=json` among the arguments.
fn json_requested(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let mut after_flag = false;
    for arg in args {
        if (after_flag && arg == "json") || arg == "--format=json" {
            return true;
        }
        after_flag = arg == "--format";
    }
    false
}

/// `System`, with a refused allocation reported as E0904 (see the module doc).
struct ReportingAllocator;

// SAFETY: every call is forwarded to `System` unchanged, with the caller's own guarantees; only
// a null result (the system said no) is acted on, by code that allocates nothing.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for ReportingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            refused(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            refused(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            refused(new_size);
        }
        p
    }
}

/// The system refused `bytes`: back to a fallible caller, else E0904 and exit status 2.
fn refused(bytes: usize) {
    if modelc::util::alloc::is_fallible() {
        return;
    }
    if REPORTING.swap(true, Ordering::SeqCst) {
        // Another thread is reporting and about to exit the process.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    let mut text = Buf::new();
    text.push(b"error[E0904]: out of memory: could not allocate ");
    text.push_number(bytes);
    text.push(b" bytes\n  = help: ");
    text.push(HELP.as_bytes());
    text.push(b"\n");
    write_fd(2, text.as_bytes());
    if JSON.load(Ordering::Relaxed) {
        let mut json = Buf::new();
        json.push(
            br#"{"code":"E0904","severity":"error","message":"out of memory: could not allocate "#,
        );
        json.push_number(bytes);
        json.push(br#" bytes","file":null,"line":null,"column":null,"end_line":null,"end_column":null,"labels":[],"notes":[],"help":""#);
        json.push(HELP.as_bytes());
        json.push(b"\"}\n");
        write_fd(1, json.as_bytes());
    }
    std::process::exit(2)
}

/// The help of the E0904 the allocator writes (no `"` or `\`: it goes into JSON as is).
const HELP: &str = "the system refused the memory; use a smaller batch or data set, or set `--max-activation-bytes` below the memory this machine has, so that modelc refuses such a run before allocating";

/// A message built on the stack.
struct Buf {
    bytes: [u8; 512],
    len: usize,
}

impl Buf {
    fn new() -> Self {
        Self {
            bytes: [0; 512],
            len: 0,
        }
    }

    /// Appends what fits of `s`.
    fn push(&mut self, s: &[u8]) {
        for &b in s {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    /// Appends `n` in decimal.
    fn push_number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Writes `bytes` to file descriptor `fd` without taking the standard streams' locks or
/// buffers (which a failing thread may hold); errors are ignored, there is nowhere to report.
#[cfg(unix)]
#[allow(unsafe_code)]
fn write_fd(fd: std::os::fd::RawFd, bytes: &[u8]) {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: 1 and 2 are open for the whole process; `ManuallyDrop` never closes them.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let _ = (&*file).write_all(bytes);
}

#[cfg(not(unix))]
fn write_fd(fd: i32, bytes: &[u8]) {
    use std::io::Write;
    let _ = if fd == 1 {
        std::io::stdout().write_all(bytes)
    } else {
        std::io::stderr().write_all(bytes)
    };
}

#[cfg(test)]
mod tests {
    use super::{json_requested, Buf};

    fn args(list: &[&str]) -> impl Iterator<Item = std::ffi::OsString> {
        list.iter()
            .map(std::ffi::OsString::from)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn json_is_found_in_both_spellings_and_only_as_the_format() {
        assert!(json_requested(args(&[
            "modelc", "train", "--format", "json", "a.model"
        ])));
        assert!(json_requested(args(&["modelc", "check", "--format=json"])));
        assert!(!json_requested(args(&[
            "modelc", "run", "json", "--format", "human"
        ])));
        assert!(!json_requested(args(&["modelc", "run", "--out", "json"])));
    }

    #[test]
    fn numbers_are_written_in_decimal_on_the_stack() {
        for (n, text) in [
            (0, "0"),
            (7, "7"),
            (4096, "4096"),
            (usize::MAX, "18446744073709551615"),
        ] {
            let mut b = Buf::new();
            b.push(b"n=");
            b.push_number(n);
            assert_eq!(b.as_bytes(), format!("n={text}").as_bytes());
        }
    }
}
