//! What `check`'s paths name: `-` is standard input, a folder is every `.model` file below it
//! (sorted, symbolic links to folders not followed, so a link loop cannot trap the walk), and
//! anything else is a file read as it is.

use crate::diag::{codes, Diagnostic};
use std::path::{Path, PathBuf};

/// One spec to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

/// The specs the paths name, in the order given (a folder's files sorted by path).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Input>, Diagnostic> {
    let mut out = Vec::new();
    let stdin_count = paths.iter().filter(|p| p.as_os_str() == "-").count();
    if stdin_count > 1 {
        return Err(Diagnostic::error(
            codes::IO_USAGE,
            "standard input (`-`) is given more than once",
        )
        .help("read one spec from standard input, name the others as files"));
    }
    for path in paths {
        if path.as_os_str() == "-" {
            out.push(Input::Stdin);
        } else if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found).map_err(|e| read_error(path, &e))?;
            if found.is_empty() {
                return Err(Diagnostic::error(
                    codes::IO_USAGE,
                    format!("the folder {} holds no `.model` file", path.display()),
                )
                .help("give a folder with specs in it, or the spec files themselves"));
            }
            found.sort();
            out.extend(found.into_iter().map(Input::File));
        } else {
            out.push(Input::File(path.clone()));
        }
    }
    Ok(out)
}

/// Collects every `.model` file below `dir`.
fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "model")
            && (kind.is_file() || path.is_file())
        {
            found.push(path);
        }
    }
    Ok(())
}

fn read_error(path: &Path, e: &std::io::Error) -> Diagnostic {
    let shown = path.display().to_string();
    Diagnostic::error(codes::IO_READ, format!("cannot read {shown}: {e}")).at_external(shown, 0, 0)
}
