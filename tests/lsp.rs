//! `modelc lsp` driven over stdio as an editor drives it: JSON-RPC messages with
//! `Content-Length` headers, answers asserted against what `modelc check` reports and values
//! worked out by hand (sizes 13 → 11 → 5 → 3, UTF-16 columns).

// Test code: a failed unwrap is a failed test.
// Messages are built in place by `json!` at each call.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_pass_by_value
)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The third conv sees a 1x1 map (13 → 11 → 5 → 3 → 1): E0402 on line 6. The comment before
/// it holds `é` (2 bytes, 1 UTF-16 unit) and `𝔸` (4 bytes, 2 units), so the error's column is
/// 14 in UTF-16 units (17 in bytes).
const BROKEN: &str = "// A small net.
model Small(image: f32[N, 13, 13, 1]) -> f32[N, 10] {
    let c1 = conv2d(8, kernel: 3)
    c1 |> max_pool2d(2)
    conv2d(8, kernel: 3)
    max_pool2d(2)
    /* é𝔸 */ conv2d(8, kernel: 3)
    flatten()
    dense(10, activation: softmax)
}
";

const URI: &str = "file:///work/small.model";

struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: mpsc::Receiver<Value>,
    next_id: i64,
    /// Notifications seen while waiting for responses.
    notifications: Vec<Value>,
}

impl Client {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_modelc"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        len = n.parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            incoming: rx,
            next_id: 1,
            notifications: Vec::new(),
        }
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn next(&mut self) -> Value {
        self.incoming
            .recv_timeout(Duration::from_secs(60))
            .expect("the server answers")
    }

    /// Sends a request and returns its whole response (`result` or `error`).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.next();
            if m.get("id") == Some(&json!(id)) {
                return m;
            }
            self.notifications.push(m);
        }
    }

    fn result(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params);
        assert!(r.get("error").is_none(), "{method}: {r}");
        r["result"].clone()
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        if let Some(i) = self
            .notifications
            .iter()
            .position(|n| is_diagnostics_for(n, uri))
        {
            let n = self.notifications.remove(i);
            return n["params"]["diagnostics"].as_array().unwrap().clone();
        }
        loop {
            let m = self.next();
            if is_diagnostics_for(&m, uri) {
                return m["params"]["diagnostics"].as_array().unwrap().clone();
            }
            self.notifications.push(m);
        }
    }
}

fn is_diagnostics_for(m: &Value, uri: &str) -> bool {
    m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
}

fn at(line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}})
}

fn labels(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_editor_session_from_initialize_to_exit() {
    let mut c = Client::start();
    let init = c.result(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    assert_eq!(init["capabilities"]["textDocumentSync"], 1, "full sync");
    assert_eq!(init["capabilities"]["hoverProvider"], true);
    c.notify("initialized", json!({}));

    // didOpen with a shape error: the code, the range in UTF-16 units, the related place.
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "modelc", "version": 1, "text": BROKEN}}),
    );
    let diags = c.diagnostics(URI);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(d["code"], "E0402");
    assert_eq!(d["severity"], 1);
    assert_eq!(d["range"]["start"], json!({"line": 6, "character": 14}));
    assert_eq!(d["range"]["end"], json!({"line": 6, "character": 34}));
    let message = d["message"].as_str().unwrap();
    assert!(message.contains("height: 13 → 11 → 5 → 3 → 1"), "{message}");
    assert!(message.contains("help: use `padding: same`"), "{message}");
    let related = &d["relatedInformation"][0];
    assert_eq!(
        related["location"]["range"]["start"],
        json!({"line": 5, "character": 4})
    );

    // The quick fix the help names: `padding: same` added to the call.
    let actions = c.result(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": URI},
               "range": {"start": {"line": 6, "character": 20}, "end": {"line": 6, "character": 20}},
               "context": {"diagnostics": []}}),
    );
    let edit = &actions[0]["edit"]["changes"][URI][0];
    assert_eq!(edit["newText"], ", padding: same");
    assert_eq!(edit["range"]["start"], json!({"line": 6, "character": 33}));

    // didChange with the fix: no diagnostics.
    let fixed = BROKEN.replace(
        "/* é𝔸 */ conv2d(8, kernel: 3)",
        "/* é𝔸 */ conv2d(8, kernel: 3, padding: same)",
    );
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert_eq!(c.diagnostics(URI), Vec::<Value>::new());

    // Hover on the second conv: its output, parameters, FLOPs, derivation and page.
    let hover = c.result("textDocument/hover", at(4, 6));
    let text = hover["contents"]["value"].as_str().unwrap();
    // The first conv is named by its `let`, so this one is the first `conv2d`.
    assert!(
        text.contains("**conv2d** `conv2d` → `f32[N, 3, 3, 8]`"),
        "{text}"
    );
    // 3·3·8·8 + 8 = 584 parameters; per output pixel 2·(3·3·8)·8 for the multiply-adds and
    // 8 bias adds = 1,160 FLOPs, over a 3x3 output: 10,440.
    assert!(text.contains("parameters: 584"), "{text}");
    assert!(text.contains("FLOPs per sample: 10,440"), "{text}");
    assert!(text.contains("height: 13 → 11 → 5 → 3"), "{text}");
    assert!(text.contains("conv2d(filters, kernel"), "{text}");
    // Hover on a name: its type.
    let hover = c.result("textDocument/hover", at(3, 4));
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.starts_with("let `c1`: `f32[N, 11, 11, 8]`"), "{text}");

    // Inlay hints: each line's output shape.
    let hints = c.result(
        "textDocument/inlayHint",
        json!({"textDocument": {"uri": URI},
               "range": {"start": {"line": 0, "character": 0}, "end": {"line": 10, "character": 0}}}),
    );
    let shapes: Vec<&str> = hints
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        shapes,
        [
            "[N, 11, 11, 8]",
            "[N, 5, 5, 8]",
            "[N, 3, 3, 8]",
            "[N, 1, 1, 8]",
            "[N, 1, 1, 8]",
            "[N, 8]",
            "[N, 10]"
        ]
    );

    // Completion at the start of a model line: layers with their defaults, and `let` names.
    let items = c.result("textDocument/completion", at(5, 4));
    let names = labels(&items);
    for layer in ["dense", "conv2d", "lstm", "max_pool2d", "c1"] {
        assert!(
            names.iter().any(|n| n == layer),
            "{layer} missing: {names:?}"
        );
    }
    let dense = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "dense")
        .unwrap();
    assert_eq!(
        dense["detail"],
        "dense(units, activation: linear, use_bias: true)"
    );
    // Inside a call: its arguments with defaults; after `padding: `, its values.
    let items = c.result("textDocument/completion", at(4, 11));
    let args = items.as_array().unwrap();
    let padding = args
        .iter()
        .find(|i| i["label"] == "padding:")
        .expect("padding offered");
    assert!(
        padding["detail"]
            .as_str()
            .unwrap()
            .ends_with("default valid"),
        "{padding}"
    );
    let values = labels(&c.result("textDocument/completion", at(6, 44)));
    assert_eq!(values, ["valid", "same"]);

    // Signature help inside the call, on `kernel`.
    let help = c.result("textDocument/signatureHelp", at(4, 16));
    assert!(help["signatures"][0]["label"]
        .as_str()
        .unwrap()
        .starts_with("conv2d(filters, kernel"));
    assert_eq!(help["signatures"][0]["activeParameter"], 1);

    // Definition and references of `c1`.
    let def = c.result("textDocument/definition", at(3, 5));
    assert_eq!(def["range"]["start"], json!({"line": 2, "character": 8}));
    assert_eq!(def["range"]["end"], json!({"line": 2, "character": 10}));
    let refs = c.result(
        "textDocument/references",
        json!({"textDocument": {"uri": URI}, "position": {"line": 2, "character": 9},
               "context": {"includeDeclaration": true}}),
    );
    assert_eq!(refs.as_array().unwrap().len(), 2);
    // Rename `c1`: both places.
    let edit = c.result(
        "textDocument/rename",
        json!({"textDocument": {"uri": URI}, "position": {"line": 3, "character": 5}, "newName": "first"}),
    );
    assert_eq!(edit["changes"][URI].as_array().unwrap().len(), 2);

    // The outline: the model with its input and `let`.
    let symbols = c.result(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": URI}}),
    );
    assert_eq!(symbols[0]["name"], "Small");
    let children = labels_of(&symbols[0]["children"]);
    assert_eq!(children, ["image", "c1"]);

    // Formatting: the `fmt` printer's text.
    let messy = "model  M(x: f32[N,4]) {\n  dense( 2 )\n}\n";
    let other = "file:///work/messy.model";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": other, "languageId": "modelc", "version": 1, "text": messy}}),
    );
    let edits = c.result(
        "textDocument/formatting",
        json!({"textDocument": {"uri": other}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    assert_eq!(
        edits[0]["newText"],
        "model M(x: f32[N, 4]) {\n    dense(2)\n}\n"
    );

    // A panic inside a handler is an error reply; the server goes on.
    let r = c.call("modelc/internalPanic", json!({}));
    assert_eq!(r["error"]["code"], -32603, "{r}");
    let hover = c.result("textDocument/hover", at(4, 6));
    assert!(hover["contents"]["value"]
        .as_str()
        .unwrap()
        .contains("`conv2d` → `f32[N, 3, 3, 8]`"));

    // Shutdown, then exit: status 0.
    assert_eq!(c.result("shutdown", Value::Null), Value::Null);
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

fn labels_of(symbols: &Value) -> Vec<String> {
    symbols
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_file_with_a_syntax_error_still_gets_the_other_blocks_diagnostics() {
    let mut c = Client::start();
    c.result("initialize", json!({"processId": null, "capabilities": {}}));
    c.notify("initialized", json!({}));
    // The first model has a syntax error; the second a shape error, still reported.
    let text = "model A(x: f32[N, 4]) {\n    dense(3 4)\n}\n\n\
model B(image: f32[N, 3, 3, 1]) {\n    max_pool2d(4)\n}\n";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "modelc", "version": 1, "text": text}}),
    );
    let diags = c.diagnostics(URI);
    let codes: Vec<&str> = diags.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), 2, "{diags:?}");
    assert!(codes[0].starts_with("E01"), "{codes:?}");
    assert_eq!(codes[1], "E0402");
    assert_eq!(
        diags[1]["range"]["start"],
        json!({"line": 5, "character": 4})
    );
    assert_eq!(c.result("shutdown", Value::Null), Value::Null);
    c.notify("exit", Value::Null);
    assert_eq!(c.child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_schedule_chain_completes_each_link_and_reports_its_order() {
    let mut c = Client::start();
    c.result("initialize", json!({"processId": null, "capabilities": {}}));
    c.notify("initialized", json!({}));
    // Line 9: a step decay (open-ended) before a warm-up: E0508 at the step call.
    let text = "model M(x: f32[N, 3]) -> f32[N, 1] {\n    dense(1)\n}\n\
data D {\n    source regression(n: 64, features: 3)\n    batch 16\n}\n\
train M on D {\n    loss mse\n    schedule step(every: 2) |> warmup(epochs: 1)\n    \
optimizer sgd()\n    epochs 3\n}\n";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "modelc", "version": 1, "text": text}}),
    );
    let diags = c.diagnostics(URI);
    let codes: Vec<&str> = diags.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["E0508"], "{diags:?}");
    assert_eq!(
        diags[0]["range"]["start"],
        json!({"line": 9, "character": 13})
    );
    // After `|> `: every schedule, reduce_on_plateau with Keras's defaults among them.
    let items = c.result("textDocument/completion", at(9, 31));
    let plateau = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["label"] == "reduce_on_plateau")
        .unwrap_or_else(|| panic!("{items}"));
    let detail = plateau["detail"].as_str().unwrap();
    assert!(
        detail.contains("factor: 0.1") && detail.contains("patience: 10"),
        "{detail}"
    );
    // Inside the chained call: its arguments.
    let args = labels(&c.result("textDocument/completion", at(9, 38)));
    assert!(args.iter().any(|a| a == "epochs:"), "{args:?}");
    assert_eq!(c.result("shutdown", Value::Null), Value::Null);
    c.notify("exit", Value::Null);
    assert_eq!(c.child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_data_block_completes_the_inputs_setting_and_its_group_names() {
    let mut c = Client::start();
    c.result("initialize", json!({"processId": null, "capabilities": {}}));
    c.notify("initialized", json!({}));
    // Line 4: the groups; line 5: `map ` waiting for a group or a step; line 6: empty.
    let text = "model M(a: f32[N, 2], b: f32[N, 1]) -> f32[N, 1] {\n    concat(a, b) |> dense(1)\n}\n\
data D {\n    inputs a: 2, b: 1\n    map \n    \n    source regression(n: 64, features: 3)\n    batch 16\n}\n";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "modelc", "version": 1, "text": text}}),
    );
    let _ = c.diagnostics(URI);
    let settings = labels(&c.result("textDocument/completion", at(6, 4)));
    assert!(settings.iter().any(|l| l == "inputs"), "{settings:?}");
    let after_map = labels(&c.result("textDocument/completion", at(5, 8)));
    for want in ["a:", "b:", "standardize", "scale"] {
        assert!(after_map.iter().any(|l| l == want), "{want}: {after_map:?}");
    }
    assert_eq!(c.result("shutdown", Value::Null), Value::Null);
    c.notify("exit", Value::Null);
    assert_eq!(c.child.wait().unwrap().code(), Some(0));
}

#[test]
fn semantic_tokens_colour_each_word_by_its_place() {
    let mut c = Client::start();
    let init = c.result("initialize", json!({"processId": null, "capabilities": {}}));
    let legend: Vec<String> = init["capabilities"]["semanticTokensProvider"]["legend"]
        ["tokenTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    c.notify("initialized", json!({}));
    let text = "model M(x: f32[N, 4]) {\n    dense(3, activation: relu) // out\n}\n";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "modelc", "version": 1, "text": text}}),
    );
    let tokens = c.result(
        "textDocument/semanticTokens/full",
        json!({"textDocument": {"uri": URI}}),
    );
    let data: Vec<u64> = tokens["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // Decode the relative encoding into (line, column, length, type name).
    let (mut line, mut col) = (0, 0);
    let mut decoded = Vec::new();
    for t in data.chunks(5) {
        if t[0] > 0 {
            col = 0;
        }
        line += t[0];
        col += t[1];
        decoded.push((line, col, t[2], legend[t[3] as usize].clone()));
    }
    let want = [
        (0, 0, 5, "keyword"),
        (0, 6, 1, "class"),
        (0, 8, 1, "parameter"),
        (0, 11, 3, "type"),
        (0, 15, 1, "variable"),
        (0, 18, 1, "number"),
        (1, 4, 5, "function"),
        (1, 10, 1, "number"),
        (1, 13, 10, "parameter"),
        (1, 25, 4, "variable"),
        (1, 31, 6, "comment"),
    ];
    let want: Vec<(u64, u64, u64, String)> = want
        .iter()
        .map(|&(l, c, n, t)| (l, c, n, t.to_string()))
        .collect();
    assert_eq!(decoded, want);
    assert_eq!(c.result("shutdown", Value::Null), Value::Null);
    c.notify("exit", Value::Null);
    assert_eq!(c.child.wait().unwrap().code(), Some(0));
}
