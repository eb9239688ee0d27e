//! `cargo bench --bench lsp`: the language server's answer times over an in-memory connection,
//! as an editor sees them: from a `didChange` of a 1,000-layer spec to its published
//! diagnostics (parse + check + conversion; target < 50 ms), and a hover on a layer of that
//! spec (target < 20 ms; the analysis is already made then).

// A benchmark that gets no answer, or a wrong one, stops with a message.
#![allow(clippy::panic)]

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::json;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A conv stack of `layers` lines (conv2d / relu / batch_norm over a 32x32 map, `same`
/// padding), then a head: shapes, parameters and FLOPs all to be worked out.
fn spec(layers: usize, broken: bool) -> String {
    let mut s = String::from("model Deep(image: f32[N, 32, 32, 3]) -> f32[N, 10] {\n");
    for i in 0..layers.saturating_sub(3) {
        let line = match i % 3 {
            0 => "conv2d(16, kernel: 3, padding: same)",
            1 => "batch_norm()",
            _ => "relu()",
        };
        let _ = writeln!(s, "    {line}");
    }
    let pool = if broken {
        "max_pool2d(64)"
    } else {
        "max_pool2d(2)"
    };
    let _ = writeln!(
        s,
        "    {pool}\n    flatten()\n    dense(10, activation: softmax)\n}}"
    );
    s
}

const URI: &str = "file:///bench/deep.model";

fn recv(client: &Connection) -> Message {
    client
        .receiver
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("no answer from the server: {e}"))
}

fn main() {
    let (server, client) = Connection::memory();
    let thread = std::thread::spawn(move || modelc::lsp::serve(&server));
    let send = |m: Message| client.sender.send(m).unwrap_or_else(|e| panic!("{e}"));
    send(
        Request::new(
            RequestId::from(0),
            "initialize".into(),
            json!({"capabilities": {}}),
        )
        .into(),
    );
    let _ = recv(&client);
    send(Notification::new("initialized".into(), json!({})).into());
    let layers = 1_000;
    send(
        Notification::new(
            "textDocument/didOpen".into(),
            json!({"textDocument": {"uri": URI, "languageId": "modelc", "version": 0, "text": spec(layers, false)}}),
        )
        .into(),
    );
    let _ = recv(&client);

    let runs = 20;
    let mut diagnostics = Vec::new();
    for i in 0..runs {
        let broken = i % 2 == 0;
        let text = spec(layers, broken);
        let t = Instant::now();
        send(
            Notification::new(
                "textDocument/didChange".into(),
                json!({"textDocument": {"uri": URI, "version": i + 1}, "contentChanges": [{"text": text}]}),
            )
            .into(),
        );
        let Message::Notification(n) = recv(&client) else {
            panic!("expected diagnostics")
        };
        diagnostics.push(t.elapsed());
        let count = n.params["diagnostics"].as_array().map_or(0, Vec::len);
        assert_eq!(count, usize::from(broken), "{}", n.params);
    }
    // Leave the clean text in place, then hover on a conv in the middle.
    send(
        Notification::new(
            "textDocument/didChange".into(),
            json!({"textDocument": {"uri": URI, "version": 999}, "contentChanges": [{"text": spec(layers, false)}]}),
        )
        .into(),
    );
    let _ = recv(&client);
    let mut hovers = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let line = 1 + 3 * (100 + i * 10);
        send(
            Request::new(
                RequestId::from(i + 1),
                "textDocument/hover".into(),
                json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": 6}}),
            )
            .into(),
        );
        let Message::Response(r) = recv(&client) else {
            panic!("expected a hover")
        };
        hovers.push(t.elapsed());
        let text = r
            .response_result
            .map(|v| v["contents"]["value"].to_string())
            .unwrap_or_default();
        assert!(text.contains("[N, 32, 32, 16]"), "{text}");
    }
    send(Request::new(RequestId::from(10_000), "shutdown".into(), json!(null)).into());
    let _ = recv(&client);
    send(Notification::new("exit".into(), json!(null)).into());
    let _ = thread.join();

    let report = |what: &str, mut times: Vec<Duration>, target: f64| {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{what:<36} median {:>7.2} ms  best {:>7.2} ms  worst {:>7.2} ms  (target < {target} ms)",
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
    };
    report(&format!("diagnostics, {layers} layers"), diagnostics, 50.0);
    report(&format!("hover, {layers} layers"), hovers, 20.0);
}
