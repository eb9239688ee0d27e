// Tokenizes every spec given on the command line (default: the repository's specs/*.model) with
// the TextMate grammar, as VS Code does (vscode-textmate + the Oniguruma regex engine), and
// fails on any text the grammar leaves unscoped: every non-blank character must get a scope
// beyond the file's own `source.modelc` (and beyond a `meta.*` block scope).
// Usage: node test/grammar.test.js [FILE.model...]
"use strict";
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const here = __dirname;
const wasm = fs.readFileSync(path.join(here, "..", "node_modules", "vscode-oniguruma", "release", "onig.wasm"));
const onigLib = oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength)).then(() => ({
  createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
  createOnigString: (s) => new oniguruma.OnigString(s),
}));

const registry = new vsctm.Registry({
  onigLib,
  loadGrammar: async (scopeName) => {
    if (scopeName !== "source.modelc") return null;
    const file = path.join(here, "..", "syntaxes", "modelc.tmLanguage.json");
    return vsctm.parseRawGrammar(fs.readFileSync(file, "utf8"), file);
  },
});

function specs() {
  const given = process.argv.slice(2);
  if (given.length) return given;
  const dir = path.join(here, "..", "..", "..", "specs");
  return fs.readdirSync(dir).filter((f) => f.endsWith(".model")).sort().map((f) => path.join(dir, f));
}

async function main() {
  const grammar = await registry.loadGrammar("source.modelc");
  let problems = 0;
  let tokens = 0;
  const files = specs();
  for (const file of files) {
    const lines = fs.readFileSync(file, "utf8").split(/\r\n|\r|\n/);
    let stack = vsctm.INITIAL;
    lines.forEach((line, i) => {
      const r = grammar.tokenizeLine(line, stack);
      for (const t of r.tokens) {
        tokens += 1;
        const text = line.slice(t.startIndex, t.endIndex);
        const leaf = t.scopes[t.scopes.length - 1];
        if (text.trim() !== "" && (leaf === "source.modelc" || leaf.startsWith("meta."))) {
          problems += 1;
          const lead = text.length - text.trimStart().length;
          const column = t.startIndex + lead + 1;
          console.error(`${file}:${i + 1}:${column}: no scope for ${JSON.stringify(text.trim())}`);
        }
      }
      stack = r.ruleStack;
    });
  }
  if (problems) {
    console.error(`${problems} unscoped token(s)`);
    process.exit(1);
  }
  console.log(`${files.length} specs, ${tokens} tokens, every one scoped`);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
