// Tests for src/protocol.ts (compiled to out/) and for the protocol itself against a real
// `plumline serve`, spoken to over stdio with plain JSON-RPC (vscode-jsonrpc), because no VS Code
// desktop can run here.
//
// Run: npm run compile && node --test test/
// Server: PLUMLINE_SERVER_CMD='["/path/to/plumline","serve"]' (default: the repo's .venv/bin/plumline
// serve, skipped when missing). PLUMLINE_TEST_REPORT=FILE writes what happened as JSON (the pytest
// wrapper tests/editors/test_vscode.py checks the store with it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import rpc from "vscode-jsonrpc/node.js";
import protocol from "../out/protocol.js";

const { ShownTracker, Methods, parseStatus, statusBarText, acceptCommandParams, completionId, firstItem } = protocol;
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..", "..");

const item = (text, id = "c1") => ({
  insertText: text,
  range: { start: { line: 0, character: 4 }, end: { line: 0, character: 4 } },
  command: { title: "plumline: accepted", command: "plumline.accept", arguments: [id] },
});

// -- ShownTracker: editor events in, notifications out ----------------------------------------

test("shown: the provider's item is reported with the item itself", () => {
  const t = new ShownTracker();
  const it = item("return a + b");
  assert.deepEqual(t.show(it, "file:///a.py", 4, 4), [{ method: "textDocument/didShowCompletion", params: { item: it } }]);
  assert.equal(t.cursor, 4);
});

test("partial: accept word / line inserts a prefix at the cursor and reports acceptedLength", () => {
  const t = new ShownTracker();
  const it = item("return a + b\n    # done");
  t.show(it, "file:///a.py", 4, 4);
  assert.deepEqual(t.edit("file:///a.py", [{ offset: 4, removed: 0, text: "return" }]), [
    { method: "textDocument/didPartiallyAcceptCompletion", params: { item: it, acceptedLength: 6 } },
  ]);
  assert.deepEqual(t.cursorMoved("file:///a.py", 10), []);
  const [n] = t.edit("file:///a.py", [{ offset: 10, removed: 0, text: " a + b" }]);
  assert.equal(n.params.acceptedLength, 12);
});

test("typing one matching character keeps the suggestion without a report", () => {
  const t = new ShownTracker();
  t.show(item("return"), "file:///a.py", 4, 4);
  assert.deepEqual(t.edit("file:///a.py", [{ offset: 4, removed: 0, text: "r" }]), []);
  assert.equal(t.cursor, 5);
});

test("full accept: the whole text arrives, then the accept command ends tracking silently", () => {
  const t = new ShownTracker();
  const it = item("return a + b");
  t.show(it, "file:///a.py", 4, 4);
  assert.deepEqual(t.edit("file:///a.py", [{ offset: 4, removed: 0, text: "return a + b" }]), []);
  assert.deepEqual(t.cursorMoved("file:///a.py", 16), []);
  t.accepted("c1");
  assert.equal(t.item, undefined);
  assert.deepEqual(t.escape(), []);
  assert.deepEqual(acceptCommandParams(it), { command: "plumline.accept", arguments: ["c1"] });
});

test("full accept that rewrites from range.start (VS Code replaces the typed prefix) is an accept", () => {
  const t = new ShownTracker();
  t.show(item("return x"), "file:///a.py", 4, 7); // "ret" already typed
  assert.deepEqual(t.edit("file:///a.py", [{ offset: 4, removed: 3, text: "return x" }]), []);
});

test("dismissed: typed-over, moved, escape", () => {
  const t = new ShownTracker();
  const it = item("return");
  t.show(it, "file:///a.py", 4, 4);
  assert.deepEqual(t.edit("file:///a.py", [{ offset: 4, removed: 0, text: "x" }]), [
    { method: "plumline/didDismissCompletion", params: { item: it, reason: "typed-over" } },
  ]);
  t.show(it, "file:///a.py", 4, 4);
  assert.equal(t.cursorMoved("file:///a.py", 0)[0].params.reason, "moved");
  t.show(it, "file:///a.py", 4, 4);
  assert.equal(t.cursorMoved("file:///b.py", 4)[0].params.reason, "moved");
  t.show(it, "file:///a.py", 4, 4);
  assert.equal(t.escape()[0].params.reason, "escape");
  assert.deepEqual(t.escape(), []);
});

test("status: parsed strictly and rendered with model, adapter and logging", () => {
  const st = parseStatus({ model: "/m/tiny", adapter: "base", backend: "local", queueDepth: 0, telemetry: false, version: "0.1" });
  assert.equal(statusBarText(st, true), "$(sparkle) plumline: tiny · base · log off");
  assert.throws(() => parseStatus({ model: 1 }), /model/);
  assert.throws(() => parseStatus(null), /object/);
});

// -- against the real server ------------------------------------------------------------------

function serverCommand() {
  if (process.env.PLUMLINE_SERVER_CMD) {
    return JSON.parse(process.env.PLUMLINE_SERVER_CMD);
  }
  const exe = join(repo, ".venv", "bin", "plumline");
  return existsSync(exe) ? [exe, "serve"] : undefined;
}

function connect(cmd, cwd) {
  const proc = spawn(cmd[0], cmd.slice(1), { cwd, stdio: ["pipe", "pipe", "pipe"], env: process.env });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr = (stderr + d).slice(-4000); });
  const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(proc.stdout), new rpc.StreamMessageWriter(proc.stdin));
  conn.listen();
  return { proc, conn, stderr: () => stderr };
}

test("plumline serve over stdio: capabilities, a completion, shown and accept", { timeout: 240_000 }, async (t) => {
  const cmd = serverCommand();
  if (!cmd) {
    t.skip("no plumline executable (set PLUMLINE_SERVER_CMD)");
    return;
  }
  const workspace = process.env.PLUMLINE_TEST_WORKSPACE ?? here;
  const { proc, conn, stderr } = connect(cmd, workspace);
  const report = { cmd };
  try {
    const init = await conn.sendRequest("initialize", {
      processId: process.pid,
      rootUri: pathToFileURL(workspace).href,
      capabilities: { textDocument: { inlineCompletion: { dynamicRegistration: false } } },
      clientInfo: { name: "plumline-vscode-test" },
    });
    const caps = init.capabilities;
    assert.ok(caps.inlineCompletionProvider, `no inlineCompletionProvider in ${JSON.stringify(caps)}`);
    assert.ok(caps.executeCommandProvider?.commands?.includes(Methods.acceptCommand), JSON.stringify(caps.executeCommandProvider));
    await conn.sendNotification("initialized", {});

    const uri = pathToFileURL(join(workspace, "sample.py")).href;
    // The tiny test model says nothing at the start of an empty block, but completes mid-line.
    const lines = ["def add(a, b):", "    return a"];
    await conn.sendNotification("textDocument/didOpen", {
      textDocument: { uri, languageId: "python", version: 1, text: lines.join("\n") },
    });
    const position = { line: 1, character: lines[1].length };
    let it;
    for (let attempt = 0; attempt < 5 && !it; attempt++) {
      const result = await conn.sendRequest(Methods.inlineCompletion, {
        textDocument: { uri }, position, context: { triggerKind: attempt === 0 ? 2 : 1 },
      });
      it = firstItem(result);
    }
    assert.ok(it, "the server offered no suggestion in 5 tries");
    assert.equal(typeof it.insertText, "string");
    const id = completionId(it);
    assert.ok(id, `the item's command carries no completion id: ${JSON.stringify(it.command)}`);
    report.completionId = id;
    report.text = it.insertText;

    // What the extension does: report it shown, then accept it through the item's command.
    const tracker = new ShownTracker();
    for (const n of tracker.show(it, uri, 0, 0)) {
      await conn.sendNotification(n.method, n.params);
    }
    tracker.edit(uri, [{ offset: 0, removed: 0, text: it.insertText }]);
    await conn.sendNotification("textDocument/didChange", {
      textDocument: { uri, version: 2 },
      contentChanges: [{ range: { start: position, end: position }, text: it.insertText }],
    });
    await conn.sendRequest("workspace/executeCommand", acceptCommandParams(it));
    tracker.accepted(id);
    assert.equal(tracker.item, undefined);

    const status = parseStatus(await conn.sendRequest(Methods.status, {}));
    report.status = status;
    assert.equal(status.telemetry, true);
    const asked = await conn.sendRequest(Methods.telemetry, { enabled: null });
    assert.deepEqual(asked, { enabled: true }); // a query never changes the switch
    const off = await conn.sendRequest(Methods.telemetry, { enabled: false });
    assert.deepEqual(off, { enabled: false });
    const on = await conn.sendRequest(Methods.telemetry, { enabled: true });
    assert.deepEqual(on, { enabled: true });

    await conn.sendRequest("shutdown");
    await conn.sendNotification("exit");
    await new Promise((res) => (proc.exitCode !== null ? res() : proc.on("exit", res)));
    report.exitCode = proc.exitCode;
  } catch (err) {
    err.message += `\nserver stderr:\n${stderr()}`;
    throw err;
  } finally {
    conn.dispose();
    proc.kill();
    if (process.env.PLUMLINE_TEST_REPORT) {
      writeFileSync(process.env.PLUMLINE_TEST_REPORT, JSON.stringify(report));
    }
  }
});
