//! SARIF 2.1.0 output (`modelc check --format sarif`), for code-scanning dashboards (GitHub's
//! `upload-sarif`, Azure DevOps, IDE viewers).
//!
//! Input: every diagnostic of one command and the [`SourceMap`] they point into. Output: one
//! SARIF log (a single JSON document with one run), written even when there are no diagnostics
//! (an empty `results` says "clean"). Invariants: deterministic (no timestamps, rules sorted by
//! code); each result's `ruleId` names a rule of `tool.driver.rules`, whose descriptions come
//! from the code registry (title) and the code's explanation page; regions are 1-based with the
//! end column exclusive, counted in characters (`columnKind: unicodeCodePoints`), as modelc
//! counts them everywhere; a location outside any spec keeps only the lines it knows.

use super::{lookup, Code, Diagnostic, Severity, SourceMap};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The JSON schema of SARIF 2.1.0 (OASIS standard, errata 01).
const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The SARIF log of `diags`.
pub fn to_sarif(map: &SourceMap, diags: &[Diagnostic]) -> Value {
    let codes: BTreeSet<Code> = diags.iter().map(|d| d.code).collect();
    let codes: Vec<Code> = codes.into_iter().collect();
    let rules: Vec<Value> = codes.iter().map(|&c| rule(c)).collect();
    let results: Vec<Value> = diags
        .iter()
        .map(|d| result(map, d, codes.binary_search(&d.code).unwrap_or_default()))
        .collect();
    let mut driver = Map::new();
    driver.insert("name".into(), "modelc".into());
    driver.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    driver.insert("semanticVersion".into(), env!("CARGO_PKG_VERSION").into());
    let home = env!("CARGO_PKG_REPOSITORY");
    if !home.is_empty() {
        driver.insert("informationUri".into(), home.into());
    }
    driver.insert("rules".into(), rules.into());
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": driver },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

/// The rule of one code: its title, the first paragraph of its page, and the whole page.
fn rule(code: Code) -> Value {
    let info = lookup(code.as_str());
    let title = info.map_or("", |i| i.title);
    let page = info.map_or("", |i| i.explanation);
    let first_paragraph = page
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    json!({
        "id": code.as_str(),
        "name": rule_name(title),
        "shortDescription": { "text": title },
        "fullDescription": { "text": first_paragraph },
        "help": {
            "text": format!("{page}\nRun `modelc explain {code}` for this page."),
            "markdown": page,
        },
    })
}

/// A rule's `name`, in SARIF's customary PascalCase (`unknown layer` → `UnknownLayer`).
fn rule_name(title: &str) -> String {
    title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// One result: the message with its notes and help, and where it is.
fn result(map: &SourceMap, d: &Diagnostic, rule_index: usize) -> Value {
    let mut text = d.message.clone();
    for n in &d.notes {
        text.push_str("\nnote: ");
        text.push_str(n);
    }
    if let Some(h) = &d.help {
        text.push_str("\nhelp: ");
        text.push_str(h);
    }
    let mut out = json!({
        "ruleId": d.code.as_str(),
        "ruleIndex": rule_index,
        "level": level(d.severity),
        "message": { "text": text },
    });
    if let (Some(location), Some(obj)) = (location(map, d), out.as_object_mut()) {
        obj.insert("locations".into(), json!([location]));
    }
    out
}

/// The result's physical location: the primary label's region, or the external place's line.
fn location(map: &SourceMap, d: &Diagnostic) -> Option<Value> {
    let (uri, region) = if let Some(l) = d.primary_label() {
        let s = map.line_col(l.file, l.span.start);
        let e = map.line_col(l.file, l.span.end);
        let region = json!({
            "startLine": s.line, "startColumn": s.column,
            "endLine": e.line, "endColumn": e.column,
        });
        (map.name(l.file), Some(region))
    } else {
        let ext = d.external.as_ref()?;
        let region = match (ext.line, ext.column) {
            (0, _) => None,
            (line, 0) => Some(json!({ "startLine": line })),
            (line, column) => Some(json!({ "startLine": line, "startColumn": column })),
        };
        (ext.path.as_str(), region)
    };
    let mut physical = json!({ "artifactLocation": { "uri": uri_reference(uri) } });
    if let (Some(region), Some(obj)) = (region, physical.as_object_mut()) {
        obj.insert("region".into(), region);
    }
    Some(json!({ "physicalLocation": physical }))
}

/// A path as given (relative stays relative) as a URI reference: `/` separators, and every
/// byte outside RFC 3986's unreserved characters and `/` percent-encoded.
fn uri_reference(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{codes, Span};

    #[test]
    fn a_result_has_its_rule_level_message_and_exclusive_end_column() {
        let mut map = SourceMap::new();
        let f = map.add(
            "specs/a b.model",
            "model M(x: f32[N, 4]) {\n    dnse(3)\n}\n",
        );
        let d = Diagnostic::error(codes::CHECK_UNKNOWN_LAYER, "unknown layer `dnse`")
            .primary(f, Span::new(28, 32), "not a layer")
            .help("did you mean `dense`?");
        let log = to_sarif(&map, &[d]);
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        assert_eq!(run["tool"]["driver"]["rules"][0]["id"], "E0200");
        assert_eq!(
            run["tool"]["driver"]["rules"][0]["shortDescription"]["text"],
            "unknown layer"
        );
        assert_eq!(run["tool"]["driver"]["rules"][0]["name"], "UnknownLayer");
        let r = &run["results"][0];
        assert_eq!(r["ruleId"], "E0200");
        assert_eq!(r["ruleIndex"], 0);
        assert_eq!(r["level"], "error");
        assert_eq!(
            r["message"]["text"],
            "unknown layer `dnse`\nhelp: did you mean `dense`?"
        );
        let p = &r["locations"][0]["physicalLocation"];
        assert_eq!(p["artifactLocation"]["uri"], "specs/a%20b.model");
        assert_eq!(p["region"]["startLine"], 2);
        assert_eq!(p["region"]["startColumn"], 5);
        assert_eq!(p["region"]["endColumn"], 9);
    }

    #[test]
    fn no_diagnostics_is_a_log_with_no_results() {
        let log = to_sarif(&SourceMap::new(), &[]);
        assert_eq!(log["runs"][0]["results"], json!([]));
        assert_eq!(log["runs"][0]["tool"]["driver"]["rules"], json!([]));
    }

    #[test]
    fn an_external_place_without_a_line_has_no_region() {
        let d = Diagnostic::error(codes::IO_READ, "cannot read x").at_external("x.model", 0, 0);
        let log = to_sarif(&SourceMap::new(), &[d]);
        let p = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
        assert_eq!(p["artifactLocation"]["uri"], "x.model");
        assert!(p.get("region").is_none());
    }
}
