//! Loading spec files: size limit first, then bytes → UTF-8 → AST.

use crate::diag::{codes, Diagnostic, FileId, SourceMap};
use crate::syntax::{self, ast, Limits};
use std::io::Read;
use std::path::Path;

/// A spec file that was read (whether or not it parsed).
pub struct LoadedSpec {
    pub file: FileId,
    pub ast: ast::File,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and parses one spec into `map`. `Err` means it could not be read at all (exit 2).
pub fn load(map: &mut SourceMap, path: &Path, limits: &Limits) -> Result<LoadedSpec, Diagnostic> {
    let shown = path.display().to_string();
    let io_err = |e: std::io::Error| {
        Diagnostic::error(codes::IO_READ, format!("cannot read {shown}: {e}")).at_external(
            shown.clone(),
            0,
            0,
        )
    };
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if meta.is_dir() {
        return Err(Diagnostic::error(
            codes::IO_READ,
            format!("cannot read {shown}: it is a folder"),
        )
        .at_external(shown.clone(), 0, 0)
        .help("give the path of a `.model` file"));
    }
    if meta.len() > limits.max_source_bytes {
        let file = map.add(shown.clone(), String::new());
        let d = Diagnostic::error(
            codes::SYNTAX_FILE_TOO_LARGE,
            format!(
                "{shown} is {} bytes; the limit is {}",
                meta.len(),
                limits.max_source_bytes
            ),
        )
        .at_external(shown.clone(), 0, 0)
        .help("raise the limit with `--max-source-bytes`");
        return Ok(LoadedSpec {
            file,
            ast: ast::File::default(),
            diagnostics: vec![d],
        });
    }
    let mut bytes = Vec::new();
    // Read at most one byte past the limit, in case the file grew since `metadata`.
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(limits.max_source_bytes.saturating_add(1))
                .read_to_end(&mut bytes)
        })
        .map_err(io_err)?;
    Ok(parse_bytes(map, shown, &bytes, limits))
}

/// Reads a spec from standard input (at most the size limit plus one byte), shown as `shown`.
pub fn load_stdin(
    map: &mut SourceMap,
    shown: &str,
    limits: &Limits,
) -> Result<LoadedSpec, Diagnostic> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(limits.max_source_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Diagnostic::error(codes::IO_READ, format!("cannot read standard input: {e}"))
                .at_external(shown.to_string(), 0, 0)
        })?;
    Ok(parse_bytes(map, shown.to_string(), &bytes, limits))
}

/// Parses bytes read from `shown` into `map`: the size limit, UTF-8, then the AST.
fn parse_bytes(map: &mut SourceMap, shown: String, bytes: &[u8], limits: &Limits) -> LoadedSpec {
    let file = map.add(shown.clone(), String::from_utf8_lossy(bytes).into_owned());
    if bytes.len() as u64 > limits.max_source_bytes {
        let d = Diagnostic::error(
            codes::SYNTAX_FILE_TOO_LARGE,
            format!("{shown} is larger than {} bytes", limits.max_source_bytes),
        )
        .at_external(shown, 0, 0)
        .help("raise the limit with `--max-source-bytes`");
        return LoadedSpec {
            file,
            ast: ast::File::default(),
            diagnostics: vec![d],
        };
    }
    let text = match syntax::decode(file, bytes) {
        Ok(t) => t,
        Err(d) => {
            return LoadedSpec {
                file,
                ast: ast::File::default(),
                diagnostics: vec![d],
            }
        }
    };
    let parsed = syntax::parse(file, text, limits);
    LoadedSpec {
        file,
        ast: parsed.file,
        diagnostics: parsed.diagnostics,
    }
}
