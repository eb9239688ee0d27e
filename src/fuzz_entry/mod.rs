//! Entry points for the fuzz targets (`fuzz/`) and the replayed corpus (`tests/fuzz_replay.rs`).
//!
//! Input: arbitrary bytes, one function per stage. Output: an [`Outcome`], the diagnostic codes
//! the stage reported (empty when the input was accepted). Each function drives its stage the
//! way the command line does (the same readers, limits and validation), minus files and
//! terminals. Invariant: every function returns on every input; a panic, hang or unbounded
//! allocation here is a bug in the library, which is what the fuzzers look for.

mod plan;
mod source;

pub use plan::{load_plan, load_weights, weight_plan_count};
pub use source::load_source;

use crate::check::limits::{check_limits, ModelLimits};
use crate::diag::{self, codes, Diagnostic, FileId, Format, RenderOptions, SourceMap};
use crate::passes::{Mode, PassOptions};
use crate::syntax::{self, Limits};
use codespan_reporting::term::termcolor::NoColor;

/// What a stage made of an input: the codes of the diagnostics it reported, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub codes: Vec<&'static str>,
    /// Broken invariants that are modelc's fault rather than the input's (a compiled plan that
    /// does not load back, a pass that fails on a checked model). Fuzz targets assert this is
    /// empty, so such bugs count as crashes.
    pub internal_errors: Vec<String>,
}

impl Outcome {
    /// The outcome of a stage that reported `diags`.
    fn of(diags: &[Diagnostic]) -> Self {
        Self {
            codes: diags.iter().map(|d| d.code.as_str()).collect(),
            internal_errors: Vec::new(),
        }
    }

    /// Whether the input was accepted without any diagnostic.
    pub fn is_clean(&self) -> bool {
        self.codes.is_empty()
    }
}

/// Renders `diags` in every output format (as the CLI would print them), to catch spans or
/// locations that the renderers cannot place.
fn render_all(map: &SourceMap, diags: &[Diagnostic]) {
    for format in [Format::Human, Format::Json, Format::Github, Format::Sarif] {
        let mut sink = NoColor::new(Vec::new());
        // An I/O error cannot happen on a Vec; a render error is reported, not a panic.
        let _ = diag::render(&mut sink, map, diags, RenderOptions { format });
    }
}

/// Decodes and parses `bytes` like `modelc check` reads a spec; the syntax diagnostics.
fn parse_into(map: &mut SourceMap, bytes: &[u8]) -> (FileId, syntax::ast::File, Vec<Diagnostic>) {
    let file = map.add("fuzz.model", String::from_utf8_lossy(bytes).into_owned());
    let limits = Limits::default();
    if bytes.len() as u64 > limits.max_source_bytes {
        return (file, syntax::ast::File::default(), Vec::new());
    }
    match syntax::decode(file, bytes) {
        Ok(text) => {
            let parsed = syntax::parse(file, text, &limits);
            (file, parsed.file, parsed.diagnostics)
        }
        Err(d) => (file, syntax::ast::File::default(), vec![d]),
    }
}

/// `modelc check` up to the end of parsing: UTF-8, pre-pass, grammar, AST, rendering.
pub fn parse(bytes: &[u8]) -> Outcome {
    let mut map = SourceMap::new();
    let (_, _, diags) = parse_into(&mut map, bytes);
    render_all(&map, &diags);
    Outcome::of(&diags)
}

/// `modelc check` (with the default model limits) and then `modelc compile` of every model the
/// checker accepts (inference and training plans, optimized, and the plan's RON round trip).
pub fn check(bytes: &[u8]) -> Outcome {
    let mut map = SourceMap::new();
    let (file, ast, mut diags) = parse_into(&mut map, bytes);
    let mut internal_errors = Vec::new();
    if !diags.iter().any(Diagnostic::is_error) {
        let mut checked = crate::check::check_file(file, &ast);
        let over = check_limits(file, &checked.models, &ModelLimits::default());
        checked.diagnostics.extend(over);
        diags.extend(checked.diagnostics.iter().cloned());
        if !checked.has_errors() {
            let hash = crate::plan::spec_hash(bytes);
            for model in &checked.models {
                match compile_model(model, &hash) {
                    Ok(internal) => internal_errors.extend(internal),
                    Err(e) => diags.push(
                        Diagnostic::error(
                            codes::LOWER_UNSUPPORTED,
                            format!("cannot compile `{}`: {}", e.layer, e.message),
                        )
                        .primary(file, e.span, "in this layer"),
                    ),
                }
            }
        }
    }
    diag::sort(&mut diags);
    render_all(&map, &diags);
    Outcome {
        internal_errors,
        ..Outcome::of(&diags)
    }
}

/// Lowers one checked model (`Err`: the lowering refused it, a user-facing problem) and
/// compiles it in both modes; `Ok` holds the internal errors found on the way.
fn compile_model(
    model: &crate::check::types::CheckedModel,
    hash: &str,
) -> Result<Vec<String>, crate::ir::LowerError> {
    let graph = crate::ir::lower(model)?;
    let mut internal = Vec::new();
    for mode in [Mode::Infer, Mode::Train] {
        match crate::plan::compile(graph.clone(), mode, &PassOptions::default(), hash.into()) {
            Ok(plan) => match plan.to_ron() {
                Ok(text) => {
                    if let Err(e) = crate::plan::ExecutionPlan::from_ron(&text) {
                        internal.push(format!(
                            "{mode:?} plan of `{}` does not load back: {e}",
                            model.name
                        ));
                    }
                }
                Err(e) => internal.push(format!(
                    "{mode:?} plan of `{}` does not serialize: {e}",
                    model.name
                )),
            },
            Err(e) => internal.push(format!("{mode:?} compile of `{}`: {e}", model.name)),
        }
    }
    Ok(internal)
}
