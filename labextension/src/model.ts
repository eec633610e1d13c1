/**
 * The panel's chat state for one kernel: a list of display entries built from validated
 * kernel messages, rate-limit gauges and the connection status. No DOM and no JupyterLab (only
 * `@lumino/signaling`), so the message handling is unit-tested with jest.
 */

import { ISignal, Signal } from '@lumino/signaling';
import {
  AgentEvent,
  Compacted,
  ContextGauge,
  KernelMessage,
  RateLimitSnapshot,
  TranscriptEntry,
  parseKernelMessage,
  retryText,
  webSearchText
} from './protocol';
import { callSummary } from './preview';

export type ConnectionStatus =
  'no-kernel' | 'connecting' | 'not-loaded' | 'loading' | 'connected' | 'restarting' | 'disconnected';

export type EntryKind =
  | 'user'
  | 'assistant'
  | 'reasoning'
  | 'search'
  | 'tool'
  | 'approval'
  | 'warning'
  | 'retry'
  | 'error'
  | 'notice'
  | 'status';

export interface Entry {
  /** Stable key within the model. */
  key: string;
  kind: EntryKind;
  text: string;
  turnId: string;
  /** "commentary" | "final_answer" from the model; other strings are shown unlabelled. */
  phase?: string | null;
  /** user: "panel" | "cell" | ...; pending until the kernel starts the turn. */
  source?: string;
  pending?: boolean;
  /** assistant/reasoning: finished streaming. */
  done?: boolean;
  /** search: "in_progress" | "completed"; tool: "running" | "done" | "error". */
  status?: string;
  /** tool/approval */
  name?: string;
  callId?: string;
  decision?: string;
  /** approval: what the call will do ('code' or 'diff', see preview.ts); absent: the arguments say it. */
  preview?: string;
  previewKind?: string;
  previewLanguage?: string;
  level?: string;
  /** Bumped on every change (the view re-renders changed entries only). */
  rev: number;
}

let counter = 0;
function nextKey(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}`;
}

export class ChatModel {
  entries: Entry[] = [];
  rateLimits: Record<string, RateLimitSnapshot> = {};
  status: ConnectionStatus = 'no-kernel';
  busy = false;
  model = '';
  provider = '';
  transport = '';
  serverModel = '';
  /** The last context gauge: input tokens of the last request against the window (issue 14). */
  context: ContextGauge | null = null;
  /** The latest protocol/connection problem, shown in the status line. */
  lastError = '';
  /** Invalid kernel messages dropped (a misbehaving kernel never breaks the view). */
  invalidMessages = 0;
  private _running = new Set<string>();
  private _byKey = new Map<string, Entry>();
  private _changed = new Signal<this, void>(this);

  /** Emitted after every change of the entries, the status or the gauges. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  protected emitChanged(): void {
    this._changed.emit(undefined);
  }

  setStatus(status: ConnectionStatus, error = ''): void {
    this.status = status;
    this.lastError = error;
    if (status !== 'connected') {
      this._running.clear();
      this.busy = false;
    }
    this.emitChanged();
  }

  /** A prompt the user just sent; shown at once, confirmed by the turn_started event. */
  addPending(id: string, text: string): Entry {
    const entry = this.add({ key: `pending-${id}`, kind: 'user', text, turnId: '', source: 'panel', pending: true });
    this.emitChanged();
    return entry;
  }

  /** A local error (e.g. a message too large to send). */
  addLocalError(text: string): void {
    this.add({ key: nextKey('local-error'), kind: 'error', text, turnId: '' });
    this.emitChanged();
  }

  /** Parse, validate and apply one raw comm message; false when it was rejected. */
  receive(data: unknown): boolean {
    const parsed = parseKernelMessage(data);
    if (!parsed.ok) {
      this.invalidMessages += 1;
      console.warn('jupyter-agent: dropped an invalid kernel message:', parsed.error);
      return false;
    }
    this.apply(parsed.value);
    return true;
  }

  apply(msg: KernelMessage): void {
    switch (msg.type) {
      case 'state':
        this.model = msg.model;
        this.provider = msg.provider;
        this.transport = msg.transport;
        this.rateLimits = { ...msg.rate_limits };
        this.busy = msg.busy;
        this.status = 'connected';
        this.lastError = '';
        break;
      case 'history':
        this.replaceHistory(msg.messages);
        break;
      case 'event':
        this.applyEvent(msg.event);
        break;
      case 'error':
        this.add({
          key: nextKey('kernel-error'),
          kind: 'error',
          text: msg.request_type ? `${msg.message}` : msg.message,
          turnId: ''
        });
        break;
    }
    this.emitChanged();
  }

  private replaceHistory(messages: TranscriptEntry[]): void {
    const pending = this.entries.filter(e => e.pending);
    this.entries = [];
    this._byKey.clear();
    messages.forEach((m, i) => {
      const kind: EntryKind =
        m.role === 'user'
          ? 'user'
          : m.role === 'assistant'
            ? 'assistant'
            : m.role === 'warning'
              ? 'warning'
              : m.role === 'tool'
                ? 'tool'
                : 'notice';
      const entry = this.add({
        key: `history-${i}-${kind}`,
        kind,
        text: kind === 'warning' ? m.text.replace(/^Warning: /, '') : m.text,
        turnId: '',
        phase: m.phase,
        done: true,
        status: kind === 'tool' ? 'done' : undefined
      });
      if (kind === 'user') {
        entry.source = 'history';
      }
    });
    for (const p of pending) {
      this.entries.push(p);
      this._byKey.set(p.key, p);
    }
  }

  private add(init: Omit<Entry, 'rev'>): Entry {
    const entry: Entry = { ...init, rev: 0 };
    this.entries.push(entry);
    this._byKey.set(entry.key, entry);
    return entry;
  }

  private update(entry: Entry, patch: Partial<Entry>): void {
    Object.assign(entry, patch);
    entry.rev += 1;
  }

  private remove(pred: (e: Entry) => boolean): void {
    const keep: Entry[] = [];
    for (const e of this.entries) {
      if (pred(e)) {
        this._byKey.delete(e.key);
      } else {
        keep.push(e);
      }
    }
    this.entries = keep;
  }

  entry(key: string): Entry | undefined {
    return this._byKey.get(key);
  }

  private applyEvent(event: AgentEvent): void {
    const t = event.turn_id;
    switch (event.type) {
      case 'turn_started': {
        this._running.add(t);
        this.busy = true;
        const pending = this.entries.find(e => e.pending && event.source === 'panel' && e.text === event.prompt);
        if (pending) {
          this.update(pending, { pending: false, turnId: t });
        } else {
          this.add({
            key: `user-${t}`,
            kind: 'user',
            text: event.title || event.prompt,
            turnId: t,
            source: event.source
          });
        }
        break;
      }
      case 'turn_done': {
        this._running.delete(t);
        this.busy = this._running.size > 0;
        for (const e of this.entries) {
          if (e.turnId === t && (e.kind === 'assistant' || e.kind === 'reasoning') && !e.done) {
            this.update(e, { done: true });
          }
        }
        this.remove(e => e.turnId === t && e.kind === 'retry');
        if (event.status === 'interrupted') {
          this.add({ key: `status-${t}`, kind: 'status', text: 'Stopped.', turnId: t, status: event.status });
        } else if (event.status === 'failed') {
          this.add({ key: `status-${t}`, kind: 'status', text: 'The turn failed.', turnId: t, status: event.status });
        }
        break;
      }
      case 'text_delta': {
        const key = `msg-${t}-${event.item_id}`;
        const e = this._byKey.get(key);
        if (e) {
          this.update(e, { text: e.text + event.delta, phase: event.phase ?? e.phase });
        } else {
          this.add({ key, kind: 'assistant', text: event.delta, turnId: t, phase: event.phase, done: false });
        }
        break;
      }
      case 'message_done': {
        const key = `msg-${t}-${event.item_id}`;
        const e = this._byKey.get(key);
        if (e) {
          this.update(e, { text: event.text || e.text, phase: event.phase ?? e.phase, done: true });
        } else if (event.text) {
          this.add({ key, kind: 'assistant', text: event.text, turnId: t, phase: event.phase, done: true });
        }
        break;
      }
      case 'reasoning_delta': {
        const key = `reasoning-${t}-${event.item_id}`;
        const e = this._byKey.get(key);
        if (e) {
          this.update(e, { text: e.text + event.delta });
        } else {
          this.add({ key, kind: 'reasoning', text: event.delta, turnId: t, done: false });
        }
        break;
      }
      case 'web_search': {
        const key = `search-${t}-${event.item_id}`;
        const e = this._byKey.get(key);
        const text = webSearchText(event);
        if (e) {
          this.update(e, { text, status: event.status });
        } else {
          this.add({ key, kind: 'search', text, turnId: t, status: event.status });
        }
        break;
      }
      case 'tool_call': {
        const key = `tool-${event.call_id}`;
        if (!this._byKey.has(key)) {
          this.add({
            key,
            kind: 'tool',
            text: `${event.name}(${event.arguments})`,
            turnId: t,
            name: event.name,
            callId: event.call_id,
            status: 'running'
          });
        }
        break;
      }
      case 'tool_result': {
        const e = this._byKey.get(`tool-${event.call_id}`);
        if (e) {
          this.update(e, { status: event.is_error ? 'error' : 'done' });
        }
        break;
      }
      case 'approval_request':
        this.add({
          key: `approval-${event.call_id}`,
          kind: 'approval',
          text: callSummary(event.name, event.arguments, !!event.preview_kind),
          turnId: t,
          name: event.name,
          callId: event.call_id,
          ...(event.preview_kind
            ? { preview: event.preview, previewKind: event.preview_kind, previewLanguage: event.preview_language }
            : {})
        });
        break;
      case 'approval_resolved': {
        const e = this._byKey.get(`approval-${event.call_id}`);
        if (e) {
          this.update(e, { decision: event.decision });
        }
        break;
      }
      case 'rate_limits':
        if (event.snapshot) {
          this.rateLimits = { ...this.rateLimits, [event.snapshot.limit_id]: event.snapshot };
        }
        break;
      case 'server_model':
        this.serverModel = event.model;
        break;
      case 'reroute_warning':
        this.add({ key: nextKey('reroute'), kind: 'warning', text: event.message, turnId: t });
        break;
      case 'retry': {
        // The failed attempt's partial output is discarded (as in the cell).
        this.remove(e => e.turnId === t && (e.kind === 'assistant' || e.kind === 'reasoning') && !e.done);
        const key = `retry-${t}`;
        const e = this._byKey.get(key);
        if (e) {
          this.update(e, { text: retryText(event) });
        } else {
          this.add({ key, kind: 'retry', text: retryText(event), turnId: t });
        }
        break;
      }
      case 'error':
        this.add({ key: nextKey('error'), kind: 'error', text: event.message, turnId: t });
        break;
      case 'notice':
        this.add({
          key: nextKey('notice'),
          kind: event.level === 'warning' ? 'warning' : 'notice',
          text: event.message,
          turnId: t,
          level: event.level
        });
        break;
      case 'context':
        this.context = event;
        break;
      case 'compacted':
        this.add({ key: nextKey('compacted'), kind: 'notice', text: compactedText(event), turnId: t, level: 'info' });
        break;
      case 'usage':
      case 'telemetry':
      case 'realtime':
        break;
    }
  }
}

const COMPACTION_REASONS: Record<string, string> = {
  requested: 'on request',
  threshold: 'the context was nearly full',
  context_length_exceeded: "the model's context window was exceeded; the turn was retried"
};

/** The compaction marker, worded as in the cell (ui/context_gauge.py compacted_text). */
export function compactedText(e: Compacted): string {
  const why = COMPACTION_REASONS[e.reason] ?? e.reason;
  const how = e.method === 'responses/compact' ? 'OpenAI /responses/compact' : 'a summary written by the model';
  return `Conversation compacted (${why}): ${e.items_before} history items became ${e.items_after} (${how}).`;
}

/** The context gauge as a gauge item ("Context 42%"); an unknown window shows the tokens only. */
export function contextItem(
  e: ContextGauge | null
): { id: string; label: string; percent: number | null; title: string; value: string } | null {
  if (!e) {
    return null;
  }
  const tokens = e.input_tokens.toLocaleString('en-US');
  if (!e.window) {
    return {
      id: 'context',
      label: 'Context',
      percent: null,
      title: `${tokens} tokens; window ${e.source}`,
      value: `${tokens} tok`
    };
  }
  const percent = Math.max(0, Math.min(100, (100 * e.input_tokens) / e.window));
  const title = `Context: ${percent.toFixed(0)}% used (${tokens} / ${e.window.toLocaleString('en-US')} tokens; ${e.source})`;
  return { id: 'context', label: 'Context', percent, title, value: `${Math.round(percent)}%` };
}

/** Short label for one gauge: "5h 42%". */
export function gaugeItems(
  limits: Record<string, RateLimitSnapshot>
): { id: string; label: string; percent: number; title: string }[] {
  const out: { id: string; label: string; percent: number; title: string }[] = [];
  for (const snap of Object.values(limits)) {
    const base = snap.limit_name || snap.limit_id;
    const windows: [string, RateLimitSnapshot['primary']][] = [
      ['primary', snap.primary],
      ['secondary', snap.secondary]
    ];
    for (const [which, w] of windows) {
      if (!w) {
        continue;
      }
      const span = w.window_minutes ? windowLabel(w.window_minutes) : which;
      const percent = Math.max(0, Math.min(100, w.used_percent));
      let title = `${base} ${span}: ${percent.toFixed(0)}% used`;
      if (w.resets_at) {
        title += `, resets ${new Date(w.resets_at * 1000).toLocaleTimeString()}`;
      }
      out.push({ id: `${snap.limit_id}-${which}`, label: `${base} ${span}`, percent, title });
    }
  }
  return out;
}

export function windowLabel(minutes: number): string {
  if (minutes % 10080 === 0) {
    return `${minutes / 10080}w`;
  }
  if (minutes % 1440 === 0) {
    return `${minutes / 1440}d`;
  }
  if (minutes % 60 === 0) {
    return `${minutes / 60}h`;
  }
  return `${minutes}m`;
}
