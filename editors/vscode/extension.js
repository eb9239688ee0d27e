// The VS Code client: starts `modelc lsp` on stdio for `.model` files. Everything the editor
// shows (errors, shapes, hovers, completion, formatting) comes from the server.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("modelc").get("path") || "modelc";
  const server = { command, args: ["lsp"], transport: TransportKind.stdio };
  client = new LanguageClient(
    "modelc",
    "modelc language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "modelc" }, { scheme: "untitled", language: "modelc" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
