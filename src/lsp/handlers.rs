//! The protocol's requests: decoding parameters, asking the feature modules, encoding answers.
//! Positions are converted here (UTF-16 columns ↔ byte offsets, `position`), so the feature
//! modules work in byte spans only.

use super::actions::{self, fix_for, message, primary_span, severity};
use super::analysis::Analysis;
use super::names::NameKind;
use super::navigate::{self, OutlineEntry, RenameError};
use super::{completion, hover, semantic, Failure, Server};
use crate::diag::Span;
use lsp_server::{ErrorCode, Request};
use lsp_types::request::{
    CodeActionRequest, Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest,
    InlayHintRequest, PrepareRenameRequest, References, Rename, Request as _,
    SemanticTokensFullRequest, SignatureHelpRequest,
};
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionProviderCapability,
    CompletionOptions, DiagnosticRelatedInformation, DocumentSymbol, Hover, HoverContents,
    HoverProviderCapability, InlayHint, InlayHintKind, InlayHintLabel, Location, MarkupContent,
    MarkupKind, NumberOrString, OneOf, PrepareRenameResponse, RenameOptions, SemanticTokens,
    SemanticTokensFullOptions, SemanticTokensOptions, SemanticTokensResult,
    SemanticTokensServerCapabilities, ServerCapabilities, SignatureHelpOptions, SymbolKind,
    TextDocumentPositionParams, TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri,
    WorkspaceEdit,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;

/// What the server can do.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["(".into(), ",".into(), ":".into(), " ".into()]),
            ..CompletionOptions::default()
        }),
        signature_help_provider: Some(SignatureHelpOptions {
            trigger_characters: Some(vec!["(".into(), ",".into()]),
            retrigger_characters: Some(vec![":".into()]),
            work_done_progress_options: lsp_types::WorkDoneProgressOptions::default(),
        }),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: lsp_types::WorkDoneProgressOptions::default(),
        })),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        inlay_hint_provider: Some(OneOf::Left(true)),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                legend: semantic::legend(),
                full: Some(SemanticTokensFullOptions::Bool(true)),
                range: None,
                work_done_progress_options: lsp_types::WorkDoneProgressOptions::default(),
            },
        )),
        ..ServerCapabilities::default()
    }
}

/// The method of a deliberate panic, for testing that the server survives one.
const PANIC_METHOD: &str = "modelc/internalPanic";

/// The document a request is about, if it names one.
pub fn document_of(req: &Request) -> Option<Uri> {
    let uri = req.params.get("textDocument")?.get("uri")?;
    serde_json::from_value(uri.clone()).ok()
}

fn params<P: DeserializeOwned>(req: Request) -> Result<P, Failure> {
    serde_json::from_value(req.params)
        .map_err(|e| Failure::new(ErrorCode::InvalidParams, e.to_string()))
}

fn json(value: impl serde::Serialize) -> Result<Value, Failure> {
    serde_json::to_value(value).map_err(|e| Failure::new(ErrorCode::InternalError, e.to_string()))
}

/// Answers one request.
pub fn dispatch(server: &mut Server<'_>, req: Request) -> Result<Value, Failure> {
    match req.method.as_str() {
        HoverRequest::METHOD => {
            let p: lsp_types::HoverParams = params(req)?;
            let (a, at) = at(server, &p.text_document_position_params)?;
            json(hover::hover(a, at).map(|(value, span)| Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value,
                }),
                range: Some(a.range(span)),
            }))
        }
        Completion::METHOD => {
            let p: lsp_types::CompletionParams = params(req)?;
            let (a, at) = at(server, &p.text_document_position)?;
            json(completion::complete(a, at))
        }
        SignatureHelpRequest::METHOD => {
            let p: lsp_types::SignatureHelpParams = params(req)?;
            let (a, at) = at(server, &p.text_document_position_params)?;
            json(completion::signature_help(a, at))
        }
        GotoDefinition::METHOD => {
            let p: lsp_types::GotoDefinitionParams = params(req)?;
            let pos = &p.text_document_position_params;
            let uri = pos.text_document.uri.clone();
            let (a, at) = at(server, pos)?;
            json(navigate::definition(a, at).map(|span| Location::new(uri, a.range(span))))
        }
        References::METHOD => {
            let p: lsp_types::ReferenceParams = params(req)?;
            let uri = p.text_document_position.text_document.uri.clone();
            let (a, at) = at(server, &p.text_document_position)?;
            let spans = navigate::references(a, at, p.context.include_declaration);
            json(
                spans
                    .into_iter()
                    .map(|s| Location::new(uri.clone(), a.range(s)))
                    .collect::<Vec<_>>(),
            )
        }
        PrepareRenameRequest::METHOD => {
            let p: TextDocumentPositionParams = params(req)?;
            let (a, at) = at(server, &p)?;
            let symbol = navigate::renameable(a, at);
            let span = symbol.and_then(|s| {
                std::iter::once(s.def)
                    .chain(s.uses.iter().copied())
                    .find(|x| x.start <= at && at <= x.end)
            });
            json(span.map(|s| PrepareRenameResponse::Range(a.range(s))))
        }
        Rename::METHOD => {
            let p: lsp_types::RenameParams = params(req)?;
            let uri = p.text_document_position.text_document.uri.clone();
            let (a, at) = at(server, &p.text_document_position)?;
            let spans = navigate::rename(a, at, &p.new_name).map_err(|e| match e {
                RenameError::NotAName => Failure::new(
                    ErrorCode::InvalidParams,
                    "only a `let` name or a model input can be renamed",
                ),
                RenameError::BadName(m) => Failure::new(ErrorCode::InvalidParams, m),
            })?;
            let edits = spans
                .into_iter()
                .map(|s| TextEdit::new(a.range(s), p.new_name.clone()))
                .collect();
            json(WorkspaceEdit::new(HashMap::from([(uri, edits)])))
        }
        DocumentSymbolRequest::METHOD => {
            let p: lsp_types::DocumentSymbolParams = params(req)?;
            let a = server.analysis(&p.text_document.uri)?;
            let symbols: Vec<DocumentSymbol> = navigate::outline(a)
                .into_iter()
                .map(|e| document_symbol(a, e))
                .collect();
            json(symbols)
        }
        Formatting::METHOD => {
            let p: lsp_types::DocumentFormattingParams = params(req)?;
            let a = server.analysis(&p.text_document.uri)?;
            let edits: Vec<TextEdit> = actions::format(a)
                .map(|text| TextEdit::new(a.range(Span::new(0, a.text.len())), text))
                .into_iter()
                .collect();
            json(edits)
        }
        CodeActionRequest::METHOD => {
            let p: lsp_types::CodeActionParams = params(req)?;
            let uri = p.text_document.uri.clone();
            let a = server.analysis(&uri)?;
            json(code_actions(a, &uri, p.range))
        }
        InlayHintRequest::METHOD => {
            let p: lsp_types::InlayHintParams = params(req)?;
            let a = server.analysis(&p.text_document.uri)?;
            let range = Span::new(a.offset(p.range.start), a.offset(p.range.end));
            let hints: Vec<InlayHint> = hover::inlay_hints(a, range)
                .into_iter()
                .map(|(at, label)| InlayHint {
                    position: a.lines.position(&a.text, at),
                    label: InlayHintLabel::String(label),
                    kind: Some(InlayHintKind::TYPE),
                    text_edits: None,
                    tooltip: None,
                    padding_left: Some(true),
                    padding_right: None,
                    data: None,
                })
                .collect();
            json(hints)
        }
        SemanticTokensFullRequest::METHOD => {
            let p: lsp_types::SemanticTokensParams = params(req)?;
            let a = server.analysis(&p.text_document.uri)?;
            json(SemanticTokensResult::Tokens(SemanticTokens {
                result_id: None,
                data: semantic::tokens(a),
            }))
        }
        PANIC_METHOD => deliberate_panic(),
        other => Err(Failure::new(
            ErrorCode::MethodNotFound,
            format!("modelc lsp does not handle `{other}`"),
        )),
    }
}

#[allow(clippy::panic)]
fn deliberate_panic() -> Result<Value, Failure> {
    panic!("deliberate panic requested by `{PANIC_METHOD}`")
}

/// The analysis and the byte offset of a position in a document.
fn at<'s>(
    server: &'s mut Server<'_>,
    pos: &TextDocumentPositionParams,
) -> Result<(&'s Analysis, usize), Failure> {
    let a = server.analysis(&pos.text_document.uri)?;
    let offset = a.offset(pos.position);
    Ok((a, offset))
}

/// A document's diagnostics as the protocol carries them.
pub fn diagnostics(a: &Analysis, uri: &Uri) -> Vec<lsp_types::Diagnostic> {
    a.diagnostics
        .iter()
        .map(|d| lsp_diagnostic(a, uri, d))
        .collect()
}

fn lsp_diagnostic(a: &Analysis, uri: &Uri, d: &crate::diag::Diagnostic) -> lsp_types::Diagnostic {
    let related: Vec<DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter(|l| !l.primary)
        .map(|l| DiagnosticRelatedInformation {
            location: Location::new(uri.clone(), a.range(l.span)),
            message: l.message.clone(),
        })
        .collect();
    lsp_types::Diagnostic {
        range: a.range(primary_span(d)),
        severity: Some(severity(d.severity)),
        code: Some(NumberOrString::String(d.code.to_string())),
        source: Some("modelc".to_string()),
        message: message(d),
        related_information: (!related.is_empty()).then_some(related),
        ..lsp_types::Diagnostic::default()
    }
}

fn code_actions(a: &Analysis, uri: &Uri, range: lsp_types::Range) -> Vec<CodeActionOrCommand> {
    let wanted = Span::new(a.offset(range.start), a.offset(range.end));
    a.diagnostics
        .iter()
        .filter(|d| {
            let s = primary_span(d);
            s.start <= wanted.end && wanted.start <= s.end
        })
        .filter_map(|d| {
            let fix = fix_for(a, d)?;
            let edit = TextEdit::new(a.range(fix.span), fix.text);
            Some(CodeActionOrCommand::CodeAction(CodeAction {
                title: fix.title,
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![lsp_diagnostic(a, uri, d)]),
                edit: Some(WorkspaceEdit::new(HashMap::from([(
                    uri.clone(),
                    vec![edit],
                )]))),
                is_preferred: Some(true),
                ..CodeAction::default()
            }))
        })
        .collect()
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be written to build one.
fn document_symbol(a: &Analysis, e: OutlineEntry) -> DocumentSymbol {
    let kind = match e.kind {
        NameKind::Model => SymbolKind::CLASS,
        NameKind::Data => SymbolKind::STRUCT,
        NameKind::Train => SymbolKind::EVENT,
        NameKind::Experiment => SymbolKind::NAMESPACE,
        NameKind::Input => SymbolKind::FIELD,
        NameKind::Let => SymbolKind::VARIABLE,
    };
    let children: Vec<DocumentSymbol> = e
        .children
        .into_iter()
        .map(|c| document_symbol(a, c))
        .collect();
    DocumentSymbol {
        name: e.name,
        detail: e.detail,
        kind,
        tags: None,
        deprecated: None,
        range: a.range(e.span),
        selection_range: a.range(e.name_span),
        children: (!children.is_empty()).then_some(children),
    }
}
