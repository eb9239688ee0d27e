//! `modelc lsp`: a Language Server for `.model` files over a [`lsp_server::Connection`] (the
//! CLI opens it on stdio). It shows what the checker knows as the user types: diagnostics (the
//! codes, spans, notes and help of `modelc check`), hovers with each layer's output shape,
//! parameters, FLOPs and shape derivation, inlay hints with each line's shape, completion and
//! signature help from the signature tables, definitions, references and renames of names, the
//! outline, formatting (`modelc fmt`'s printer) and quick fixes.
//!
//! Input: LSP messages. Output: LSP messages. Invariants: the server never dies on a request:
//! a panic inside a handler is caught and answered with an error reply (the document's
//! analysis is dropped and rebuilt on next use); documents are synced whole (`Full`), and
//! checking is debounced: the messages waiting in the queue are applied first (a burst of
//! keystrokes is one check of the latest text), then each changed document is checked once
//! and its diagnostics published. Nothing here duplicates the checker: it reads
//! `check::Checked`, `ops`' signature tables and the syntax tree.
//!
//! Files: `analysis` (one document parsed and checked), `position` (UTF-16 columns), `names`
//! (definitions and uses), `context` (what the cursor is in), `hover` (+ inlay hints),
//! `completion` (+ signature help), `navigate`, `actions` (diagnostics, quick fixes,
//! formatting), `handlers` (the protocol's requests).

mod actions;
pub mod analysis;
mod completion;
mod context;
mod handlers;
mod hover;
mod names;
mod navigate;
pub mod position;
mod semantic;

use analysis::Analysis;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::{PublishDiagnosticsParams, Uri};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use handlers::capabilities;

/// An open document: its latest text and, once asked for, its analysis.
struct Document {
    version: i32,
    analysis: Option<Analysis>,
    text: String,
}

/// The server's state.
pub struct Server<'c> {
    connection: &'c Connection,
    documents: HashMap<Uri, Document>,
    /// Documents changed since their diagnostics were last published, in order of change.
    dirty: Vec<Uri>,
    shutting_down: bool,
}

/// A failed request: an LSP error code and a message.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code as i32,
            message: message.into(),
        }
    }
}

/// Serves one client until it sends `exit` (or closes the connection). `Err` is a protocol
/// error (the client broke the handshake).
pub fn serve(connection: &Connection) -> Result<(), String> {
    let caps = serde_json::to_value(capabilities()).map_err(|e| e.to_string())?;
    connection.initialize(caps).map_err(|e| e.to_string())?;
    let mut server = Server {
        connection,
        documents: HashMap::new(),
        dirty: Vec::new(),
        shutting_down: false,
    };
    while let Ok(first) = connection.receiver.recv() {
        // Everything already waiting is handled before any check runs: a burst of changes
        // costs one check of the last text.
        let mut batch = vec![first];
        while let Ok(more) = connection.receiver.try_recv() {
            batch.push(more);
        }
        for message in batch {
            match message {
                Message::Request(req) => server.request(req),
                Message::Notification(n) if n.method == "exit" => return Ok(()),
                Message::Notification(n) => server.notification(n),
                Message::Response(_) => {}
            }
        }
        server.publish_changed();
    }
    Ok(())
}

impl Server<'_> {
    fn send(&self, message: impl Into<Message>) {
        // The client is gone when this fails; the loop ends when the receiver does.
        let _ = self.connection.sender.send(message.into());
    }

    fn request(&mut self, req: Request) {
        let id = req.id.clone();
        if req.method == "shutdown" {
            self.shutting_down = true;
            self.send(Response::new_ok(id, ()));
            return;
        }
        if self.shutting_down {
            let e = Failure::new(ErrorCode::InvalidRequest, "the server is shutting down");
            self.send(Response::new_err(id, e.code, e.message));
            return;
        }
        let uri = handlers::document_of(&req);
        let outcome = catch_unwind(AssertUnwindSafe(|| handlers::dispatch(self, req)));
        let response = match outcome {
            Ok(Ok(value)) => Response {
                id,
                response_result: Ok(value),
            },
            Ok(Err(f)) => Response::new_err(id, f.code, f.message),
            Err(payload) => {
                if let Some(d) = uri.and_then(|u| self.documents.get_mut(&u)) {
                    d.analysis = None;
                }
                Response::new_err(
                    id,
                    ErrorCode::InternalError as i32,
                    format!("internal error in modelc: {}", panic_text(&*payload)),
                )
            }
        };
        self.send(response);
    }

    fn notification(&mut self, n: Notification) {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(n.params)
                {
                    let doc = p.text_document;
                    self.set_text(doc.uri, doc.version, doc.text);
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
                {
                    // Full sync: the last change holds the whole text.
                    if let Some(change) = p.content_changes.into_iter().last() {
                        let doc = p.text_document;
                        self.set_text(doc.uri, doc.version, change.text);
                    }
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(n.params)
                {
                    let uri = p.text_document.uri;
                    self.documents.remove(&uri);
                    self.dirty.retain(|u| *u != uri);
                    self.publish(uri, Vec::new(), None);
                }
            }
            _ => {}
        }
    }

    fn set_text(&mut self, uri: Uri, version: i32, text: String) {
        self.documents.insert(
            uri.clone(),
            Document {
                version,
                analysis: None,
                text,
            },
        );
        if !self.dirty.contains(&uri) {
            self.dirty.push(uri);
        }
    }

    /// The analysis of an open document, made now if the text changed since the last one.
    pub(crate) fn analysis(&mut self, uri: &Uri) -> Result<&Analysis, Failure> {
        let doc = self
            .documents
            .get_mut(uri)
            .ok_or_else(|| Failure::new(ErrorCode::InvalidParams, "the document is not open"))?;
        if doc.analysis.is_none() {
            doc.analysis = Some(Analysis::new(doc.text.clone()));
        }
        doc.analysis
            .as_ref()
            .ok_or_else(|| Failure::new(ErrorCode::InternalError, "no analysis"))
    }

    fn publish_changed(&mut self) {
        for uri in std::mem::take(&mut self.dirty) {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let version = self.documents.get(&uri).map(|d| d.version);
                self.analysis(&uri)
                    .ok()
                    .map(|a| (handlers::diagnostics(a, &uri), version))
            }));
            match outcome {
                Ok(Some((diags, version))) => self.publish(uri, diags, version),
                Ok(None) => {}
                Err(_) => {
                    if let Some(d) = self.documents.get_mut(&uri) {
                        d.analysis = None;
                    }
                }
            }
        }
    }

    fn publish(&self, uri: Uri, diagnostics: Vec<lsp_types::Diagnostic>, version: Option<i32>) {
        let params = PublishDiagnosticsParams {
            uri,
            diagnostics,
            version,
        };
        self.send(Notification::new(
            PublishDiagnostics::METHOD.to_string(),
            params,
        ));
    }
}

/// The text of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}
