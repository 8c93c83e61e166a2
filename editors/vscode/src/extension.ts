/**
 * plumline for VS Code: inline completions from `plumline serve` through vscode-languageclient,
 * plus the reports that let plumline learn which suggestions you keep (docs/protocol.md).
 *
 * - Inline completion comes from the language client's (proposed, LSP 3.18) inline completion
 *   feature, enabled with `client.registerProposedFeatures()`.
 * - Full accept: VS Code runs the item's command `plumline.accept`, which the language client
 *   forwards to the server as `workspace/executeCommand`.
 * - Shown / partial / dismissed: the stable VS Code API has no events for these, so the
 *   `provideInlineCompletionItems` middleware sends `textDocument/didShowCompletion` for the item it
 *   returns, and `ShownTracker` (src/protocol.ts) infers partial accepts, typed-over and moved from
 *   edits and cursor moves; Escape is bound to `plumline.dismissSuggestion`.
 * - A status bar item shows model, adapter and logging on/off from `plumline/status`.
 */
import * as vscode from "vscode";
import {
  InlineCompletionItem as ProtoInlineCompletionItem,
  InlineCompletionRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

import {
  Methods,
  Notification,
  ServerStatus,
  ShownTracker,
  firstItem,
  parseStatus,
  statusBarText,
  statusTooltip,
  LspInlineCompletionItem,
} from "./protocol";

const STATUS_REFRESH_MS = 60_000;

/** Everything the extension holds while active. */
class Plumline implements vscode.Disposable {
  client: LanguageClient | undefined;
  status: ServerStatus | undefined;
  readonly tracker = new ShownTracker();
  readonly statusBar = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  readonly output = vscode.window.createOutputChannel("plumline");
  private readonly disposables: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor() {
    this.statusBar.command = "plumline.showStatus";
    this.renderStatus();
    this.statusBar.show();
  }

  private get config() {
    return vscode.workspace.getConfiguration("plumline");
  }

  get enabled(): boolean {
    return this.config.get<boolean>("enable", true);
  }

  async start(): Promise<void> {
    const command = this.config.get<string>("serverCommand", "plumline");
    const args = this.config.get<string[]>("serverArgs", ["serve"]);
    const serverOptions: ServerOptions = { command, args, transport: TransportKind.stdio };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      outputChannel: this.output,
      middleware: {
        provideInlineCompletionItems: (document, position, context, token) =>
          this.provideInlineCompletionItems(document, position, context, token),
        executeCommand: (cmd, cmdArgs, next) => {
          if (cmd === Methods.acceptCommand) {
            this.tracker.accepted(cmdArgs[0] as string | undefined);
          }
          return next(cmd, cmdArgs);
        },
      },
    };
    const client = new LanguageClient("plumline", "plumline", serverOptions, clientOptions);
    client.registerProposedFeatures(); // LSP 3.18 textDocument/inlineCompletion
    this.client = client;
    try {
      await client.start();
    } catch (err) {
      this.client = undefined;
      this.renderStatus();
      void vscode.window.showErrorMessage(
        `plumline: could not start "${command} ${args.join(" ")}": ${err}. ` +
          "Set plumline.serverCommand to the plumline executable (e.g. your venv's bin/plumline).",
      );
      return;
    }
    await this.applyTelemetrySetting();
    await this.refreshStatus();
    this.timer = setInterval(() => void this.refreshStatus(), STATUS_REFRESH_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    const client = this.client;
    this.client = undefined;
    this.status = undefined;
    if (client) {
      await client.stop();
    }
    this.renderStatus();
  }

  /** Ask the server ourselves (to keep the raw LSP item), report it shown, hand it to VS Code. */
  private async provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionList | undefined> {
    const client = this.client;
    if (!client || !this.enabled) {
      return undefined;
    }
    const params = client.code2ProtocolConverter.asInlineCompletionParams(document, position, context);
    let result;
    try {
      result = await client.sendRequest(InlineCompletionRequest.type, params, token);
    } catch (err) {
      return client.handleFailedRequest(InlineCompletionRequest.type, token, err, undefined);
    }
    if (token.isCancellationRequested) {
      return undefined;
    }
    const item = firstItem(result as { items: LspInlineCompletionItem[] } | LspInlineCompletionItem[] | null);
    if (!item) {
      return undefined;
    }
    const start = item.range ? client.protocol2CodeConverter.asPosition(item.range.start) : position;
    this.send(this.tracker.show(item, document.uri.toString(), document.offsetAt(start), document.offsetAt(position)));
    const converted = client.protocol2CodeConverter.asInlineCompletionItem(item as ProtoInlineCompletionItem);
    return new vscode.InlineCompletionList([converted]);
  }

  send(notifications: Notification[]): void {
    for (const n of notifications) {
      void this.client?.sendNotification(n.method, n.params);
    }
  }

  onDidChangeTextDocument(event: vscode.TextDocumentChangeEvent): void {
    if (!this.tracker.item) {
      return;
    }
    const edits = event.contentChanges.map((c) => ({ offset: c.rangeOffset, removed: c.rangeLength, text: c.text }));
    this.send(this.tracker.edit(event.document.uri.toString(), edits));
  }

  onDidChangeSelection(event: vscode.TextEditorSelectionChangeEvent): void {
    if (!this.tracker.item) {
      return;
    }
    const doc = event.textEditor.document;
    this.send(this.tracker.cursorMoved(doc.uri.toString(), doc.offsetAt(event.selections[0].active)));
  }

  async dismiss(): Promise<void> {
    this.send(this.tracker.escape());
    await vscode.commands.executeCommand("editor.action.inlineSuggest.hide");
  }

  async refreshStatus(): Promise<void> {
    if (!this.client) {
      this.status = undefined;
    } else {
      try {
        this.status = parseStatus(await this.client.sendRequest(Methods.status, {}));
      } catch (err) {
        this.output.appendLine(`plumline/status failed: ${err}`);
        this.status = undefined;
      }
    }
    this.renderStatus();
  }

  renderStatus(): void {
    this.statusBar.text = statusBarText(this.status, this.enabled);
    this.statusBar.tooltip = statusTooltip(this.status, this.enabled);
  }

  /** Send the plumline.telemetry setting to the server (the server's answer is the truth). */
  async applyTelemetrySetting(): Promise<void> {
    if (!this.client) {
      return;
    }
    const enabled = this.config.get<boolean>("telemetry", true);
    try {
      await this.client.sendRequest(Methods.telemetry, { enabled });
    } catch (err) {
      this.output.appendLine(`plumline/telemetry failed: ${err}`);
    }
    await this.refreshStatus();
  }

  async toggleCompletions(): Promise<void> {
    const on = !this.enabled;
    if (!on) {
      this.send(this.tracker.escape());
    }
    await this.config.update("enable", on, vscode.ConfigurationTarget.Global);
    this.renderStatus();
    void vscode.window.showInformationMessage(`plumline: completions ${on ? "on" : "off"}`);
  }

  async toggleTelemetry(): Promise<void> {
    const on = !(this.status?.telemetry ?? this.config.get<boolean>("telemetry", true));
    // The configuration listener sends plumline/telemetry.
    await this.config.update("telemetry", on, vscode.ConfigurationTarget.Global);
    void vscode.window.showInformationMessage(`plumline: logging ${on ? "on" : "off"}`);
  }

  async showStatus(): Promise<void> {
    await this.refreshStatus();
    void vscode.window.showInformationMessage(statusTooltip(this.status, this.enabled).replace(/\n/g, " · "));
  }

  register(context: vscode.ExtensionContext): void {
    const cmd = (name: string, fn: () => unknown) => vscode.commands.registerCommand(name, fn);
    this.disposables.push(
      cmd("plumline.toggleCompletions", () => this.toggleCompletions()),
      cmd("plumline.toggleTelemetry", () => this.toggleTelemetry()),
      cmd("plumline.showStatus", () => this.showStatus()),
      cmd("plumline.restartServer", async () => {
        await this.stop();
        await this.start();
      }),
      cmd("plumline.dismissSuggestion", () => this.dismiss()),
      vscode.workspace.onDidChangeTextDocument((e) => this.onDidChangeTextDocument(e)),
      vscode.window.onDidChangeTextEditorSelection((e) => this.onDidChangeSelection(e)),
      vscode.workspace.onDidChangeConfiguration(async (e) => {
        if (e.affectsConfiguration("plumline.serverCommand") || e.affectsConfiguration("plumline.serverArgs")) {
          await this.stop();
          await this.start();
        } else if (e.affectsConfiguration("plumline.telemetry")) {
          await this.applyTelemetrySetting();
        } else if (e.affectsConfiguration("plumline.enable")) {
          this.renderStatus();
        }
      }),
    );
    context.subscriptions.push(this);
  }

  dispose(): void {
    void this.stop();
    for (const d of this.disposables) {
      d.dispose();
    }
    this.statusBar.dispose();
    this.output.dispose();
  }
}

let plumline: Plumline | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  plumline = new Plumline();
  plumline.register(context);
  await plumline.start();
}

export async function deactivate(): Promise<void> {
  await plumline?.stop();
  plumline = undefined;
}
