/**
 * plumline's editor protocol (docs/protocol.md), free of any `vscode` import so node can test it.
 *
 * What it does:
 *  - builds the notifications an editor sends about a suggestion: shown, partially accepted,
 *    dismissed, and the `plumline.accept` command for a full accept;
 *  - tracks the one suggestion on screen (`ShownTracker`) and turns document edits, cursor moves
 *    and Escape into those notifications;
 *  - parses `plumline/status` for the status bar.
 *
 * VS Code's stable API does not say when an inline suggestion is shown, partially accepted or
 * dismissed, so the extension infers it (see `ShownTracker`): "shown" when the provider returns an
 * item, "partial" when an edit inserts two or more characters of the suggestion at the cursor
 * (accept word / accept line), "typed-over" when an edit does not match, "moved" when the cursor
 * leaves, "escape" from the Escape key binding.
 */

/** LSP `Command`. */
export interface LspCommand {
  title: string;
  command: string;
  arguments?: unknown[];
}

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

/** LSP 3.18 `InlineCompletionItem`, as the server sends it. */
export interface LspInlineCompletionItem {
  insertText: string | { kind: "snippet"; value: string };
  filterText?: string;
  range?: LspRange;
  command?: LspCommand;
}

export type DismissReason = "escape" | "typed-over" | "moved";

export const Methods = {
  inlineCompletion: "textDocument/inlineCompletion",
  didShow: "textDocument/didShowCompletion",
  didPartiallyAccept: "textDocument/didPartiallyAcceptCompletion",
  didDismiss: "plumline/didDismissCompletion",
  status: "plumline/status",
  telemetry: "plumline/telemetry",
  acceptCommand: "plumline.accept",
} as const;

/** A JSON-RPC notification to send: method and params. */
export interface Notification {
  method: string;
  params: Record<string, unknown>;
}

/** The insertText as plain text (a snippet's raw value). */
export function itemText(item: LspInlineCompletionItem): string {
  return typeof item.insertText === "string" ? item.insertText : item.insertText.value;
}

/** The completion id the server put in the item's command, or undefined. */
export function completionId(item: LspInlineCompletionItem): string | undefined {
  const arg = item.command?.arguments?.[0];
  return typeof arg === "string" ? arg : undefined;
}

/** Length in characters (Unicode code points), the unit of `acceptedLength`. */
export function charLength(text: string): number {
  return Array.from(text).length;
}

export function showNotification(item: LspInlineCompletionItem): Notification {
  return { method: Methods.didShow, params: { item } };
}

export function partialNotification(item: LspInlineCompletionItem, acceptedLength: number): Notification {
  return { method: Methods.didPartiallyAccept, params: { item, acceptedLength } };
}

export function dismissNotification(item: LspInlineCompletionItem, reason: DismissReason): Notification {
  return { method: Methods.didDismiss, params: { item, reason } };
}

/** `workspace/executeCommand` params for a full accept (what VS Code runs from `item.command`). */
export function acceptCommandParams(item: LspInlineCompletionItem): { command: string; arguments: unknown[] } {
  return {
    command: item.command?.command ?? Methods.acceptCommand,
    arguments: item.command?.arguments ?? [],
  };
}

/** The first item of an `InlineCompletionList` / item array / null. */
export function firstItem(
  result: { items: LspInlineCompletionItem[] } | LspInlineCompletionItem[] | null | undefined,
): LspInlineCompletionItem | undefined {
  if (!result) {
    return undefined;
  }
  const items = Array.isArray(result) ? result : result.items;
  return items?.[0];
}

// -- status -----------------------------------------------------------------------------------

export interface ServerStatus {
  model: string;
  adapter: string;
  backend: string;
  queueDepth: number;
  telemetry: boolean;
  version: string;
}

/** Validate a `plumline/status` answer; throws with the offending field when it is malformed. */
export function parseStatus(raw: unknown): ServerStatus {
  if (typeof raw !== "object" || raw === null) {
    throw new Error(`plumline/status: expected an object, got ${JSON.stringify(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  const str = (k: string): string => {
    if (typeof r[k] !== "string") {
      throw new Error(`plumline/status: field ${k} should be a string, got ${JSON.stringify(r[k])}`);
    }
    return r[k] as string;
  };
  const model = str("model");
  const adapter = str("adapter");
  const backend = str("backend");
  const version = str("version");
  if (typeof r.telemetry !== "boolean") {
    throw new Error(`plumline/status: field telemetry should be a boolean, got ${JSON.stringify(r.telemetry)}`);
  }
  const queueDepth = typeof r.queueDepth === "number" ? r.queueDepth : 0;
  return { model, adapter, backend, version, queueDepth, telemetry: r.telemetry };
}

/** Last path component of a model name or path, so the status bar stays short. */
function shortName(name: string): string {
  const parts = name.split(/[\\/]/).filter(Boolean);
  return parts.length ? parts[parts.length - 1] : name;
}

/** Status bar text: model, adapter and logging on/off (and whether completions are off). */
export function statusBarText(status: ServerStatus | undefined, enabled: boolean): string {
  const icon = enabled ? "$(sparkle)" : "$(circle-slash)";
  if (!status) {
    return `${icon} plumline`;
  }
  const log = status.telemetry ? "log on" : "log off";
  return `${icon} plumline: ${shortName(status.model)} · ${status.adapter} · ${log}`;
}

export function statusTooltip(status: ServerStatus | undefined, enabled: boolean): string {
  const lines = [`Completions ${enabled ? "on" : "off"}`];
  if (status) {
    lines.push(
      `Model: ${status.model}`,
      `Adapter: ${status.adapter}`,
      `Backend: ${status.backend}`,
      `Queue: ${status.queueDepth}`,
      `Logging: ${status.telemetry ? "on" : "off"}`,
      `Server: ${status.version}`,
    );
  } else {
    lines.push("Server not running");
  }
  return lines.join("\n");
}

// -- tracking the suggestion on screen --------------------------------------------------------

/** One document edit: `removed` characters at `offset` replaced with `text` (UTF-16 offsets). */
export interface Edit {
  offset: number;
  removed: number;
  text: string;
}

interface Shown {
  item: LspInlineCompletionItem;
  uri: string;
  text: string;
  /** Document offset where insertText starts. */
  start: number;
  /** How much of `text` (UTF-16 units) the document holds at `start` now. */
  consumed: number;
  /** Whether a partial accept was reported (so a later full match is an accept, not a typing). */
  fullyInserted: boolean;
}

/**
 * The suggestion on screen and what became of it. Feed it editor events; each method returns
 * the notifications to send (often none).
 */
export class ShownTracker {
  private current: Shown | undefined;

  /** The provider returned `item` for `uri`; the insertion starts at `start`, the cursor is at `cursor`. */
  show(item: LspInlineCompletionItem, uri: string, start: number, cursor: number): Notification[] {
    const text = itemText(item);
    // VS Code shows an item only when the text between range.start and the cursor matches it.
    const consumed = Math.min(Math.max(0, cursor - start), text.length);
    // A newer suggestion replaces the old one; the server marks the old one superseded.
    this.current = { item, uri, text, start, consumed, fullyInserted: false };
    return [showNotification(item)];
  }

  get item(): LspInlineCompletionItem | undefined {
    return this.current?.item;
  }

  /** The offset right after the accepted part: where the ghost text continues. */
  get cursor(): number | undefined {
    return this.current ? this.current.start + this.current.consumed : undefined;
  }

  /** VS Code ran the item's command: a full accept; nothing more to say about this item. */
  accepted(id: string | undefined): void {
    if (this.current && completionId(this.current.item) === id) {
      this.current = undefined;
    }
  }

  /** The document `uri` changed. */
  edit(uri: string, edits: Edit[]): Notification[] {
    const s = this.current;
    if (!s || s.uri !== uri || edits.length === 0) {
      return [];
    }
    if (s.fullyInserted) {
      // Everything is in, waiting for the accept command; further edits end the tracking.
      this.current = undefined;
      return [];
    }
    const cursor = s.start + s.consumed;
    if (edits.length === 1) {
      const e = edits[0];
      // VS Code's full accept may rewrite from range.start: normalise to an insertion at the cursor.
      const prefixLen = cursor - e.offset;
      const typedBefore = s.text.slice(0, s.consumed);
      if (e.offset <= cursor && e.offset >= s.start && e.removed === prefixLen &&
          e.text.startsWith(typedBefore.slice(e.offset - s.start))) {
        const inserted = e.text.slice(prefixLen);
        const rest = s.text.slice(s.consumed);
        if (inserted.length > 0 && rest.startsWith(inserted)) {
          s.consumed += inserted.length;
          if (s.consumed >= s.text.length) {
            s.fullyInserted = true; // a full accept; its command follows
            return [];
          }
          if (inserted.length >= 2) {
            return [partialNotification(s.item, charLength(s.text.slice(0, s.consumed)))];
          }
          return []; // one typed character that matches: the suggestion stays
        }
      }
    }
    this.current = undefined;
    return [dismissNotification(s.item, "typed-over")];
  }

  /** The cursor of the editor showing `uri` is now at `offset`. */
  cursorMoved(uri: string, offset: number): Notification[] {
    const s = this.current;
    if (!s) {
      return [];
    }
    if (s.uri === uri && (offset === s.start + s.consumed || s.fullyInserted)) {
      return [];
    }
    this.current = undefined;
    return [dismissNotification(s.item, "moved")];
  }

  /** The user pressed Escape (or completions were turned off). */
  escape(): Notification[] {
    const s = this.current;
    this.current = undefined;
    return s && !s.fullyInserted ? [dismissNotification(s.item, "escape")] : [];
  }
}
