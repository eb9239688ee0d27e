//! Where the cursor is, for completion and signature help: which kind of block, which setting
//! key, which call and argument. Read from the text of the current line and the block headers
//! above it (the grammar is line-based: a call, a setting, a header each sit on one line), so
//! it works on the half-written line the parser could not read.

use super::analysis::Analysis;
use crate::syntax::ast::Item;

/// The block the cursor is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Outside any block; `header` is the text of a block header line being written.
    TopLevel,
    /// Inside a model body; the index of the model's item when the parser has it.
    Model(Option<usize>),
    Data,
    Train,
}

/// The innermost call the cursor is inside, on this line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSite {
    pub callee: String,
    /// How many arguments come before the cursor's (its index).
    pub index: usize,
    /// The keyword of the cursor's argument when `name:` was written already.
    pub keyword: Option<String>,
    /// Keywords already written in this call.
    pub written: Vec<String>,
    /// Whether the cursor is after `name:` (a value is being written).
    pub in_value: bool,
}

/// Everything completion needs to know about the cursor.
#[derive(Clone, Debug)]
pub struct Cursor {
    pub block: Block,
    /// The current line up to the cursor.
    pub before: String,
    /// The first word of the line (a setting key, `let`, `model`...).
    pub key: String,
    pub call: Option<CallSite>,
}

/// Reads the cursor's context at `offset`.
pub fn cursor(a: &Analysis, offset: usize) -> Cursor {
    let offset = clamp(&a.text, offset);
    let line = a.lines.line_of(offset);
    let span = a.lines.line_span(&a.text, line);
    let before = a.text.get(span.start..offset).unwrap_or("").to_string();
    let block = block_at(a, line);
    let key = before
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_string();
    let call = call_site(&before).or_else(|| match (block, key.as_str()) {
        // `early_stopping patience: 3, monitor: ...`: a setting's arguments, without parentheses.
        (Block::Train | Block::Data, k) if !k.is_empty() && before.trim_start().len() > k.len() => {
            let rest = before.trim_start().get(k.len()..).unwrap_or("");
            Some(args_site(k, rest))
        }
        _ => None,
    });
    Cursor {
        block,
        before,
        key,
        call,
    }
}

fn clamp(text: &str, offset: usize) -> usize {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// The block of line `line`: the nearest header above, unless a closing `}` at the start of a
/// line comes between.
fn block_at(a: &Analysis, line: usize) -> Block {
    for l in (0..=line).rev() {
        let span = a.lines.line_span(&a.text, l);
        let text = a.text.get(span.start..span.end).unwrap_or("");
        if l != line && text.starts_with('}') {
            return Block::TopLevel;
        }
        let word = text.split_whitespace().next().unwrap_or("");
        let header = text.contains('{') || l != line;
        match word {
            "model" if header => {
                let item = a
                    .ast
                    .items
                    .iter()
                    .position(|i| matches!(i, Item::Model(_)) && i.span().start == span.start);
                return Block::Model(item);
            }
            "data" if header => return Block::Data,
            "train" if header => return Block::Train,
            _ => {}
        }
        if l == line && text.starts_with(|c: char| !c.is_whitespace()) {
            return Block::TopLevel;
        }
    }
    Block::TopLevel
}

/// The innermost unclosed `(` before the end of `before`, with the callee before it.
fn call_site(before: &str) -> Option<CallSite> {
    let bytes = before.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut open = None;
    for i in (0..bytes.len()).rev() {
        match bytes[i] {
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b')' | b']' => depth += 1,
            b'[' => depth = depth.saturating_sub(1),
            b'(' if depth == 0 => {
                open = Some(i);
                break;
            }
            b'(' => depth -= 1,
            _ => {}
        }
    }
    let open = open?;
    let head = before.get(..open)?;
    let callee_start = head
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let callee = head.get(callee_start..)?;
    if callee.is_empty() {
        return None;
    }
    Some(args_site(callee, before.get(open + 1..)?))
}

/// The argument list `args` (text after the callee's `(`, up to the cursor) of `callee`.
fn args_site(callee: &str, args: &str) -> CallSite {
    let mut parts: Vec<String> = vec![String::new()];
    let mut depth = 0usize;
    let mut in_string = false;
    for c in args.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(p) = parts.last_mut() {
            p.push(c);
        }
    }
    let keyword_of = |p: &str| {
        let (k, _) = p.split_once(':')?;
        let k = k.trim();
        (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| k.to_string())
    };
    let current = parts.last().map_or("", String::as_str);
    let keyword = keyword_of(current);
    let written = parts
        .iter()
        .take(parts.len().saturating_sub(1))
        .filter_map(|p| keyword_of(p))
        .collect();
    CallSite {
        callee: callee.to_string(),
        index: parts.len() - 1,
        in_value: keyword.is_some(),
        keyword,
        written,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_sites_name_the_callee_the_argument_and_the_keyword() {
        let c = call_site("    conv2d(32, kernel: 3, padding: s").unwrap();
        assert_eq!(c.callee, "conv2d");
        assert_eq!(c.index, 2);
        assert_eq!(c.keyword.as_deref(), Some("padding"));
        assert_eq!(c.written, vec!["kernel".to_string()]);
        let inner = call_site("    x |> bidirectional(lstm(8, ").unwrap();
        assert_eq!(inner.callee, "lstm");
        assert_eq!(inner.index, 1);
        assert!(!inner.in_value);
        assert!(call_site("    dense(3) |> ").is_none());
        let list = call_site("    conv2d(8, kernel: [3, 3], st").unwrap();
        assert_eq!(list.index, 2);
        assert_eq!(list.written, vec!["kernel".to_string()]);
    }
}
