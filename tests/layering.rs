//! The layering test: every arrow between the crate's top-level modules must be one the table
//! in ARCHITECTURE.md (section "Allowed dependencies") allows.
//!
//! For every file under `src/` this reads the top-level modules it names through `crate::X`
//! paths (in `use` lines, `use crate::{a, b::c}` groups and expressions alike) and through
//! `super::` chains that climb to the crate root, and checks each arrow `module → X` against
//! the table. A failing arrow prints the file, the line and the arrow.
//!
//! Test code is skipped: items under `#[cfg(test)]` (a `mod tests { .. }` block, a `use`, a
//! function) and the files of a module declared under `#[cfg(test)]` (with its `#[path]` if
//! any, and the folder below it). A test may build its fixtures from any layer; the table is
//! about what the library's own code depends on. Comments, strings and char literals are
//! blanked first, so a doc comment naming `crate::cli` is not an arrow. `lib.rs` and
//! `main.rs` are the crate root, above every module, and are not checked.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One reference from a file to a top-level module.
#[derive(Debug, PartialEq, Eq)]
struct Arrow {
    to: String,
    line: usize,
}

/// The source with comments, strings and char literals replaced by spaces (newlines kept, so
/// byte offsets and line numbers stay those of the original).
fn blank(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let wipe = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in out.iter_mut().take(to).skip(from) {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            let end = src[i..].find('\n').map_or(b.len(), |n| i + n);
            wipe(&mut out, i, end);
            i = end;
        } else if c == b'/' && next == Some(b'*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            wipe(&mut out, i, j);
            i = j;
        } else if c == b'r'
            && (i == 0 || !ident(b[i - 1]) || b[i - 1] == b'b')
            && matches!(next, Some(b'"' | b'#'))
        {
            // A raw string r"..", r#".."#: ends at a quote followed by as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let end = src[j + 1..]
                .find(&close)
                .map_or(b.len(), |n| j + 1 + n + close.len());
            wipe(&mut out, i, end);
            i = end;
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            wipe(&mut out, i, (j + 1).min(b.len()));
            i = j + 1;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '{'), or a lifetime ('a), left alone.
            let rest = &src[i + 1..];
            let len = if let Some(escaped) = rest.strip_prefix('\\') {
                escaped.get(1..).and_then(|e| e.find('\'')).map(|n| n + 2)
            } else {
                let mut chars = rest.chars();
                let first = chars.next().map_or(0, char::len_utf8);
                (chars.next() == Some('\'')).then_some(first)
            };
            match len {
                Some(n) => {
                    wipe(&mut out, i, i + n + 2);
                    i += n + 2;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The index just past the item starting at `from`: its `;`, or the `}` closing its block.
fn item_end(s: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < s.len() {
        match s[i] {
            b';' => return i + 1,
            b'{' => {
                let mut depth = 0;
                while i < s.len() {
                    match s[i] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                return i + 1;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                return s.len();
            }
            _ => i += 1,
        }
    }
    s.len()
}

/// The blanked source with every `#[cfg(test)]` item blanked too, and the modules declared
/// under `#[cfg(test)]` without a body: `(name, #[path] value)`.
fn without_tests(original: &str) -> (String, Vec<(String, Option<String>)>) {
    let text = blank(original);
    let mut out = text.clone().into_bytes();
    let bytes = text.as_bytes();
    let mut test_mods = Vec::new();
    let mut from = 0;
    while let Some(n) = text[from..].find("#[cfg(test)]") {
        let start = from + n;
        let mut i = start + "#[cfg(test)]".len();
        let mut path = None;
        // Further attributes of the same item, e.g. `#[path = "lower_tests.rs"]`: their strings
        // were blanked, so read the value from the original text.
        loop {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if !text[i..].starts_with("#[") {
                break;
            }
            let end = item_end_bracket(bytes, i);
            let attr = &original[i..end];
            if let Some(p) = attr.strip_prefix("#[path") {
                path = p.split('"').nth(1).map(str::to_string);
            }
            i = end;
        }
        let end = item_end(bytes, i);
        let item: Vec<&str> = text[i..end].split_whitespace().collect();
        let at = item.iter().position(|w| *w == "mod");
        if let Some(name) = at.and_then(|k| item.get(k + 1)) {
            if let Some(name) = name.strip_suffix(';') {
                test_mods.push((name.to_string(), path));
            }
        }
        for c in out.iter_mut().take(end).skip(start) {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    (String::from_utf8(out).unwrap(), test_mods)
}

/// The index just past the `]` closing the attribute that starts at `from`.
fn item_end_bracket(s: &[u8], from: usize) -> usize {
    let mut depth = 0;
    for (k, c) in s.iter().enumerate().skip(from) {
        match c {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// The identifiers a path reaches first after `at`: one name, or the first name of every
/// entry of a `{a, b::c}` group.
fn first_names(s: &str, at: usize) -> Vec<(String, usize)> {
    let rest = &s[at..];
    let trimmed = rest.trim_start();
    let offset = at + rest.len() - trimmed.len();
    if let Some(group) = trimmed.strip_prefix('{') {
        let mut names = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (k, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    names.extend(ident_at(group, start, offset + 1));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    names.extend(ident_at(group, start, offset + 1));
                    start = k + 1;
                }
                _ => {}
            }
        }
        names
    } else {
        ident_at(trimmed, 0, offset).into_iter().collect()
    }
}

/// The identifier at the start of `s[from..]` (after whitespace), with its offset in the file.
fn ident_at(s: &str, from: usize, base: usize) -> Option<(String, usize)> {
    let rest = &s[from..];
    let t = rest.trim_start();
    let name: String = t
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self").then(|| (name, base + from + rest.len() - t.len()))
}

/// Every top-level module `text` (a file of module path `module_path`) refers to, with the
/// line, test code excluded. A module referring to itself is not listed.
fn arrows(text: &str, module_path: &[String]) -> Vec<Arrow> {
    let (code, _) = without_tests(text);
    let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut push = |names: Vec<(String, usize)>| {
        for (to, at) in names {
            if module_path.first() != Some(&to) {
                found.push(Arrow {
                    to,
                    line: line_of(at),
                });
            }
        }
    };
    for (at, _) in code.match_indices("crate::") {
        if at > 0 && is_ident(bytes[at - 1]) {
            continue;
        }
        push(first_names(&code, at + "crate::".len()));
    }
    for (at, _) in code.match_indices("super::") {
        if at > 0 && (is_ident(bytes[at - 1]) || code[..at].ends_with("super::")) {
            continue;
        }
        let mut end = at;
        let mut ups = 0;
        while code[end..].starts_with("super::") {
            ups += 1;
            end += "super::".len();
        }
        if ups >= module_path.len() {
            push(first_names(&code, end));
        }
    }
    found
}

/// `| \`module\` | \`a\`, \`b\` | why |` rows of the section "Allowed dependencies".
fn allowed(architecture: &str) -> BTreeMap<String, BTreeSet<String>> {
    let section = architecture
        .split("\n## ")
        .find(|s| s.starts_with("Allowed dependencies"))
        .expect("ARCHITECTURE.md has a section `## Allowed dependencies`");
    let mut table = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (Some(module), Some(uses)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Some(module) = module.strip_prefix('`').and_then(|m| m.strip_suffix('`')) else {
            continue; // the header and the separator
        };
        let names = uses
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        table.insert(module.to_string(), names);
    }
    table
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file below `src/`: `check/model.rs` → `[check, model]`,
/// `check/mod.rs` → `[check]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The files and folders that hold only test code: modules declared under `#[cfg(test)]`.
fn test_only(src: &Path, files: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for f in files {
        let (_, mods) = without_tests(&std::fs::read_to_string(f).unwrap());
        let dir = f.parent().unwrap();
        let own = if f
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
        {
            dir.to_path_buf()
        } else {
            dir.join(f.file_stem().unwrap())
        };
        for (name, path) in mods {
            if let Some(p) = path {
                roots.push(dir.join(p));
            } else {
                roots.push(own.join(format!("{name}.rs")));
                roots.push(own.join(&name));
            }
        }
    }
    roots.retain(|r| r.starts_with(src));
    roots
}

#[test]
fn every_arrow_between_modules_is_allowed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let table = allowed(&std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap());
    assert!(table.len() >= 10, "the table lists the modules: {table:?}");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() >= 100, "only {} files under src/", files.len());
    let tests = test_only(&src, &files);
    assert!(
        tests.iter().any(|t| t.ends_with("check/tests.rs")),
        "test-only modules are found: {tests:?}"
    );
    let mut problems = Vec::new();
    let mut seen = BTreeMap::<String, BTreeSet<String>>::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let path = module_path(rel);
        if path.len() == 1 && (path[0] == "lib" || path[0] == "main") {
            continue;
        }
        if tests.iter().any(|t| f.starts_with(t)) {
            continue;
        }
        let from = &path[0];
        let may = table.get(from).cloned().unwrap_or_default();
        if !table.contains_key(from) && !seen.contains_key(from) {
            problems.push(format!(
                "src/{}: module `{from}` is not in the table of ARCHITECTURE.md",
                rel.display()
            ));
        }
        seen.entry(from.clone()).or_default();
        for a in arrows(&std::fs::read_to_string(f).unwrap(), &path) {
            seen.entry(from.clone()).or_default().insert(a.to.clone());
            if !may.contains(&a.to) {
                problems.push(format!(
                    "src/{}:{}: `{from}` uses `{}`, which ARCHITECTURE.md does not allow",
                    rel.display(),
                    a.line,
                    a.to
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} arrow(s) break the layering:\n{}\n(arrows found: {seen:?})",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_reader_finds_groups_paths_and_super_chains_and_skips_tests() {
    let text = r#"//! Uses `crate::cli` in a doc comment only.
use crate::diag::{codes, Diagnostic};
use crate::{ir::{self, Graph}, ops,
    plan};
use super::other;
fn f() -> u8 {
    let s = "crate::runtime::x";
    let c = ['{', '\'', '\u{7b}'];
    crate::util::write_atomic(p, b);
    super::super::fit::run();
    pub(crate) fn g() {}
    0
}
#[cfg(test)]
mod tests {
    use crate::cli::Cli;
    fn h() { let _ = ('}', '\'', '\n'); }
}
#[cfg(test)]
#[path = "x_tests.rs"]
mod x_tests;
#[cfg(test)]
use crate::runtime::y;
fn after() { crate::data::z(); }
"#;
    let path = vec!["check".to_string(), "model".to_string()];
    let got: Vec<(String, usize)> = arrows(text, &path)
        .into_iter()
        .map(|a| (a.to, a.line))
        .collect();
    let want = [
        ("diag", 2),
        ("ir", 3),
        ("ops", 3),
        ("plan", 4),
        ("util", 9),
        ("data", 24),
        ("fit", 10),
    ];
    let mut want: Vec<(String, usize)> = want.iter().map(|(m, l)| (m.to_string(), *l)).collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    want.sort();
    assert_eq!(got_sorted, want, "{got:?}");
    let (_, mods) = without_tests(text);
    assert_eq!(
        mods,
        [("x_tests".to_string(), Some("x_tests.rs".to_string()))]
    );
    // A self-reference is no arrow.
    assert!(arrows("use crate::check::types;", &path).is_empty());
}

#[test]
fn the_table_reader_takes_backticked_names() {
    let doc = "# x\n\n## Allowed dependencies\n\n| module | may use | why |\n|---|---|---|\n\
               | `ops` | `diag` | errors |\n| `diag` | — | bottom |\n\n## Diagnostics\n| `no` | `x` |\n";
    let t = allowed(doc);
    assert_eq!(t.len(), 2);
    assert_eq!(t["ops"], BTreeSet::from(["diag".to_string()]));
    assert!(t["diag"].is_empty());
}

/// Inside `cli`: the command modules use the shared helpers (`common`, `options`, `output`,
/// `source`, `limits`, `hook`, `run_train`: what `train` and `experiment` share; `run_input`: the input rule `run`, `inspect` and `compile` share) and never each other; the helpers use no command module and
/// not `args`. `args` (the grammar, naming every command's arguments) and `mod.rs` (dispatch)
/// sit above the commands. So the CLI has no import circle.
#[test]
fn cli_commands_do_not_import_each_other() {
    const HELPERS: &[&str] = &[
        "common",
        "options",
        "output",
        "source",
        "limits",
        "hook",
        "run_train",
        "run_input",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cli = root.join("src/cli");
    let mut files = Vec::new();
    rust_files(&cli, &mut files);
    let tests = test_only(&root.join("src"), &files);
    let mut problems = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&cli).unwrap();
        let own = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let own = own.trim_end_matches(".rs").to_string();
        if own == "mod" || own == "args" || tests.iter().any(|t| f.starts_with(t)) {
            continue;
        }
        let (code, _) = without_tests(&std::fs::read_to_string(f).unwrap());
        // `super::X` from `cli/X.rs`, `super::super::X` from `cli/X/Y.rs`, or `crate::cli::X`.
        let depth = rel.components().count();
        let up = "super::".repeat(if rel.ends_with("mod.rs") {
            depth - 1
        } else {
            depth
        });
        let prefixes = [up, "crate::cli::".to_string()];
        for prefix in prefixes.iter().filter(|p| !p.is_empty()) {
            for (at, _) in code.match_indices(prefix.as_str()) {
                if at > 0 && code[..at].ends_with("super::") {
                    continue;
                }
                for (used, _) in first_names(&code, at + prefix.len()) {
                    let fine = used == own || HELPERS.contains(&used.as_str());
                    if !fine {
                        let line = code[..at].matches('\n').count() + 1;
                        problems.push(format!(
                            "src/cli/{}:{line}: `{own}` uses `{used}`",
                            rel.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
