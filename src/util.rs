//! Small helpers shared by every layer: atomic file writes, and the default size limits that
//! both the checker (`--max-layers`, `--max-param-bytes`) and the runtime (fresh weights) apply.
//! Uses no other module of the crate.

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

use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed and
/// fsynced, then renamed over `path`. On any failure `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".modelc-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(without_temp_path)?;
    // A temporary file is private (0600); the result gets the permissions of the file it
    // replaces, or the usual 0644 for a new one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
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
}
