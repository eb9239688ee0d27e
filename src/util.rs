//! Small helpers shared by every layer: atomic file writes, the default size limits that
//! both the checker (`--max-layers`, `--max-param-bytes`) and the runtime (fresh weights) apply,
//! and the mark of a fallible allocation (`alloc`). Uses no other module of the crate.

pub mod limits {
    //! Default bounds on a model, shared by `check::limits` (the flags' defaults) and
    //! `runtime::weights` (fresh weights never exceed what the checker would accept).

    /// 100,000 layers: far past any real network, well below what a spec of the largest allowed
    /// size could declare.
    pub const DEFAULT_MAX_LAYERS: u64 = 100_000;
    /// 4 GiB of parameters (a billion f32 values): training holds about four copies (values,
    /// gradients, two optimizer moments), which is what a 24 GiB machine can take.
    pub const DEFAULT_MAX_PARAM_BYTES: u64 = 4 << 30;
}

pub mod alloc {
    //! Fallible allocations: the binary's global allocator (`src/main.rs`) ends the process with
    //! E0904 when the system refuses memory, unless the allocation was asked for inside
    //! [`fallible`] (a `try_reserve` of an array whose size a user chose), whose caller gets
    //! the refusal back and reports it as a diagnostic saying what the memory was for.

    use std::cell::Cell;

    thread_local! {
        static FALLIBLE: Cell<bool> = const { Cell::new(false) };
    }

    /// Runs `f` (a `try_reserve`) with this thread's allocations marked fallible.
    pub fn fallible<R>(f: impl FnOnce() -> R) -> R {
        let before = FALLIBLE.replace(true);
        let result = f();
        FALLIBLE.set(before);
        result
    }

    /// Whether this thread is inside [`fallible`]; read by the global allocator, so it never
    /// allocates (a `const` thread-local without a destructor).
    pub fn is_fallible() -> bool {
        FALLIBLE.try_with(Cell::get).unwrap_or(false)
    }
}

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed and
/// fsynced, then renamed over `path`, and the folder fsynced. On any failure `path` is left as it
/// was. What is not a regular file is never replaced: a symbolic link keeps pointing where it
/// did and its target is written (atomically); a FIFO, a device or a socket is written through.
/// A replaced file keeps its permissions and, where the process may set them, its owner and
/// group.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let target = link_target(path)?;
    match std::fs::metadata(&target) {
        Ok(m) if !m.is_file() && !m.is_dir() => {
            let mut f = std::fs::OpenOptions::new().write(true).open(&target)?;
            f.write_all(bytes)?;
            f.flush()
        }
        _ => replace(&target, bytes),
    }
}

/// Where a write to `path` should land: `path` itself, or the file a symbolic link at `path`
/// points to (links followed up to 40 deep, as the kernel does).
fn link_target(path: &Path) -> io::Result<PathBuf> {
    let mut cur = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&cur)?;
                cur = match cur.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(cur),
        }
    }
    Err(io::Error::other(format!(
        "too many levels of symbolic links at {}",
        path.display()
    )))
}

/// The prefix and suffix of the temporary files atomic writes rename over their targets.
const TEMP_PREFIX: &str = ".modelc-";
const TEMP_SUFFIX: &str = ".tmp";

/// Whether `name` is one of the temporary files of an atomic write (left behind only when a
/// process was killed between writing it and renaming it).
pub fn is_temp_file_name(name: &str) -> bool {
    name.len() > TEMP_PREFIX.len() + TEMP_SUFFIX.len()
        && name.starts_with(TEMP_PREFIX)
        && name.ends_with(TEMP_SUFFIX)
}

/// The atomic replacement of a regular (or missing) file.
fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(without_temp_path)?;
    // A temporary file is private (0600); the result gets the permissions of the file it
    // replaces, or the usual 0644 for a new one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let old = std::fs::metadata(path).ok();
        let mode = old
            .as_ref()
            .map_or(0o644, |m| m.permissions().mode() & 0o7777);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some(m) = old {
            // The owner and group the file had, where this process may give them (root, or
            // a group it belongs to); otherwise the file becomes this process's, as any
            // editor's save would make it.
            let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(m.uid()), Some(m.gid()));
        }
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable once the folder is synced; a folder that cannot be opened
    // for that (some platforms) leaves the write done but not yet durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// tempfile's error for a temporary file it could not create ends in ` at path "..."`, naming
/// the random file that was never made; the caller names the file it meant to write instead.
fn without_temp_path(e: io::Error) -> io::Error {
    let text = e.to_string();
    match text.split_once(" at path ") {
        Some((reason, _)) => io::Error::new(e.kind(), reason.to_string()),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_gives_new_files_0644_and_keeps_existing_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_atomic(&p, b"one").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn write_atomic_into_missing_folder_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/out.txt");
        let e = write_atomic(&p, b"x").unwrap_err();
        assert!(!e.to_string().contains(".modelc-"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_writes_a_links_target_and_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.model");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.model");
        std::os::unix::fs::symlink("real.model", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_writes_through_a_fifo_and_keeps_it() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            println!("skipped: mkfifo is not available here");
            return;
        }
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_atomic(&fifo, b"through").unwrap();
        assert_eq!(reader.join().unwrap(), b"through");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "{kind:?}");
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_keeps_owner_and_group_where_it_may() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("owned.txt");
        std::fs::write(&p, b"one").unwrap();
        // Only root may give a file away; elsewhere the owner is this process either way.
        if std::os::unix::fs::chown(&p, Some(65534), Some(65534)).is_err() {
            println!("skipped: not root, cannot give the file to another owner");
            return;
        }
        write_atomic(&p, b"two").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534));
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }
}
