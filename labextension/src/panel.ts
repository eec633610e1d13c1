/**
 * The Agent side panel: a header with the connection and model, a rate-limit gauge strip that
 * stays visible, the conversation, and an input with Send and Stop.
 */

import { LabIcon, buildIcon, searchIcon } from '@jupyterlab/ui-components';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';
import { AgentConnection } from './connection';
import { ICodeActions, MarkdownView } from './markdownView';
import { Entry, contextItem, gaugeItems } from './model';
import { diffLines } from './preview';
import { phaseLabel } from './protocol';

export interface IPanelSettings {
  showReasoning: boolean;
  sendOnEnter: boolean;
}

const STATUS_TEXT: Record<string, string> = {
  'no-kernel': 'Open a notebook to chat with its kernel.',
  connecting: 'Connecting to the kernel…',
  'not-loaded': 'jupyter_agent is not loaded in this kernel.',
  loading: 'Loading jupyter_agent in the kernel…',
  connected: 'Connected',
  restarting: 'The kernel is restarting…',
  disconnected: 'Disconnected'
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export class AgentPanel extends Widget {
  private _connection: AgentConnection | null = null;
  private _settings: IPanelSettings = { showReasoning: true, sendOnEnter: true };
  private _frame = 0;
  private _rendered = new Map<string, { node: HTMLElement; rev: number }>();
  /** Assistant entries' Markdown views, kept across revs so a delta does not start from scratch. */
  private _views = new Map<string, MarkdownView>();
  private _rendermime: IRenderMimeRegistry | null;
  private _codeActions: ICodeActions | null = null;
  private _notebookName = '';

  private _title: HTMLElement;
  private _status: HTMLElement;
  private _gauges: HTMLElement;
  private _load: HTMLElement;
  private _loadButton: HTMLButtonElement;
  private _loadText: HTMLElement;
  private _messages: HTMLElement;
  private _empty: HTMLElement;
  private _input: HTMLTextAreaElement;
  private _sendButton: HTMLButtonElement;
  private _stopButton: HTMLButtonElement;

  /** `rendermime`: assistant text as sanitised Markdown; without it, plain text. */
  constructor(options: { rendermime?: IRenderMimeRegistry | null } = {}) {
    super();
    this._rendermime = options.rendermime ?? null;
    this.addClass('jp-AgentPanel');
    const header = el('div', 'jp-AgentPanel-header');
    this._title = el('div', 'jp-AgentPanel-title', 'Agent');
    this._status = el('div', 'jp-AgentPanel-connection');
    header.append(this._title, this._status);

    this._gauges = el('div', 'jp-AgentPanel-gauges');

    this._load = el('div', 'jp-AgentPanel-load');
    this._loadText = el('div', 'jp-AgentPanel-loadText', 'jupyter_agent is not loaded in this kernel.');
    this._loadButton = el(
      'button',
      'jp-AgentPanel-loadButton jp-mod-styled jp-mod-accept',
      'Load jupyter_agent in this kernel'
    );
    this._loadButton.addEventListener('click', () => void this._connection?.loadExtension());
    this._load.append(this._loadText, this._loadButton);

    this._messages = el('div', 'jp-AgentPanel-messages');
    this._empty = el(
      'div',
      'jp-AgentPanel-empty',
      'Ask the agent anything. The conversation is shared with the %%agent cells of this notebook.'
    );

    const footer = el('div', 'jp-AgentPanel-footer');
    this._input = el('textarea', 'jp-AgentPanel-input');
    this._input.rows = 3;
    this._input.placeholder = 'Message the agent (Enter to send, Shift+Enter for a new line)';
    this._input.addEventListener('keydown', ev => this._onKey(ev));
    const buttons = el('div', 'jp-AgentPanel-buttons');
    this._stopButton = el('button', 'jp-AgentPanel-stop jp-mod-styled jp-mod-warn', 'Stop');
    this._stopButton.title = 'Stop the running turn';
    this._stopButton.addEventListener('click', () => this._connection?.stop());
    this._sendButton = el('button', 'jp-AgentPanel-send jp-mod-styled jp-mod-accept', 'Send');
    this._sendButton.addEventListener('click', () => this._submit());
    buttons.append(this._stopButton, this._sendButton);
    footer.append(this._input, buttons);

    this.node.append(header, this._gauges, this._load, this._messages, footer);
    this._render();
  }

  /** What the code-block buttons (Insert below, Run) do; null hides them. */
  set codeActions(value: ICodeActions | null) {
    this._codeActions = value;
  }

  get connection(): AgentConnection | null {
    return this._connection;
  }

  set settings(value: IPanelSettings) {
    this._settings = value;
    this._input.placeholder = value.sendOnEnter
      ? 'Message the agent (Enter to send, Shift+Enter for a new line)'
      : 'Message the agent (Ctrl+Enter to send)';
    this._rendered.clear();
    this._messages.textContent = '';
    this._schedule();
  }

  /** Show `connection` (the active notebook's); null when no notebook is open. */
  setConnection(connection: AgentConnection | null, notebookName = ''): void {
    if (connection === this._connection && notebookName === this._notebookName) {
      return;
    }
    this._connection?.model.changed.disconnect(this._schedule, this);
    this._connection = connection;
    this._notebookName = notebookName;
    this._rendered.clear();
    this._clearViews();
    this._messages.textContent = '';
    if (connection) {
      connection.model.changed.connect(this._schedule, this);
    }
    this._render();
  }

  dispose(): void {
    this._connection?.model.changed.disconnect(this._schedule, this);
    this._clearViews();
    if (this._frame) {
      cancelAnimationFrame(this._frame);
    }
    super.dispose();
  }

  private _clearViews(): void {
    for (const view of this._views.values()) {
      view.dispose();
    }
    this._views.clear();
  }

  private _onKey(ev: KeyboardEvent): void {
    if (ev.key !== 'Enter' || ev.isComposing) {
      return;
    }
    const send = this._settings.sendOnEnter ? !ev.shiftKey : ev.ctrlKey || ev.metaKey;
    if (send) {
      ev.preventDefault();
      this._submit();
    }
  }

  private _submit(): void {
    const text = this._input.value;
    if (!text.trim() || !this._connection) {
      return;
    }
    if (this._connection.send(text)) {
      this._input.value = '';
    }
  }

  /** Coalesce bursts of events into one render per animation frame. */
  private _schedule = (): void => {
    if (this._frame) {
      return;
    }
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._render();
    });
  };

  private _render(): void {
    const conn = this._connection;
    const model = conn?.model;
    const status = model?.status ?? 'no-kernel';
    this.node.dataset.status = status;
    this.node.dataset.busy = String(Boolean(model?.busy));

    // Header
    let line = STATUS_TEXT[status] ?? status;
    if (model && status === 'connected') {
      const served = model.serverModel && model.serverModel !== model.model ? ` → ${model.serverModel}` : '';
      line = `${model.model || 'default model'}${served} · ${model.provider} · ${model.transport}`;
    }
    if (model?.lastError) {
      line += ` — ${model.lastError}`;
    }
    this._status.textContent = line;
    this._title.textContent = this._notebookName ? `Agent · ${this._notebookName}` : 'Agent';

    // Load offer
    this._load.hidden = status !== 'not-loaded' && status !== 'loading';
    this._loadButton.disabled = status === 'loading';
    this._loadText.textContent =
      status === 'loading' ? 'Loading jupyter_agent in this kernel…' : 'jupyter_agent is not loaded in this kernel.';

    // Gauges
    this._renderGauges();

    // Buttons
    const connected = status === 'connected';
    this._sendButton.disabled = !connected;
    this._input.disabled = !conn;
    this._stopButton.disabled = !(connected && model?.busy);

    // Messages
    this._renderMessages();
  }

  private _renderGauges(): void {
    const model = this._connection?.model;
    const context = contextItem(model?.context ?? null);
    const items = [
      ...(context ? [context] : []),
      ...gaugeItems(model?.rateLimits ?? {}).map(i => ({ ...i, value: `${Math.round(i.percent)}%` }))
    ];
    this._gauges.hidden = items.length === 0;
    this._gauges.textContent = '';
    for (const item of items) {
      const gauge = el('div', 'jp-AgentPanel-gauge');
      gauge.title = item.title;
      gauge.dataset.limit = item.id;
      const label = el('span', 'jp-AgentPanel-gaugeLabel', item.label);
      const bar = el('span', 'jp-AgentPanel-gaugeBar');
      const fill = el('span', 'jp-AgentPanel-gaugeFill');
      const percent = item.percent ?? 0;
      fill.style.width = `${percent}%`;
      if (percent >= 90) {
        fill.classList.add('jp-mod-critical');
      } else if (percent >= 70) {
        fill.classList.add('jp-mod-warning');
      }
      bar.append(fill);
      const value = el('span', 'jp-AgentPanel-gaugeValue', item.value);
      gauge.append(label, bar, value);
      this._gauges.append(gauge);
    }
  }

  private _renderMessages(): void {
    const model = this._connection?.model;
    const entries = (model?.entries ?? []).filter(e => e.kind !== 'reasoning' || this._settings.showReasoning);
    const box = this._messages;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const seen = new Set<string>();
    let previous: Element | null = null;
    for (const entry of entries) {
      seen.add(entry.key);
      let cached = this._rendered.get(entry.key);
      if (!cached) {
        cached = { node: this._entryNode(entry), rev: entry.rev };
        this._rendered.set(entry.key, cached);
      } else if (cached.rev !== entry.rev) {
        const fresh = this._entryNode(entry);
        cached.node.replaceWith(fresh);
        cached.node = fresh;
        cached.rev = entry.rev;
      }
      const expected: Element | null = previous ? previous.nextElementSibling : box.firstElementChild;
      if (expected !== cached.node) {
        box.insertBefore(cached.node, expected);
      }
      previous = cached.node;
    }
    for (const [key, cached] of this._rendered) {
      if (!seen.has(key)) {
        cached.node.remove();
        this._rendered.delete(key);
      }
    }
    for (const [key, view] of this._views) {
      if (!seen.has(key)) {
        view.dispose();
        this._views.delete(key);
      }
    }
    if (entries.length === 0) {
      box.append(this._empty);
    } else {
      this._empty.remove();
    }
    if (nearBottom) {
      box.scrollTop = box.scrollHeight;
    }
  }

  private _entryNode(entry: Entry): HTMLElement {
    const node = el('div', `jp-AgentPanel-entry jp-AgentPanel-${entry.kind}`);
    node.dataset.kind = entry.kind;
    switch (entry.kind) {
      case 'user': {
        if (entry.pending) {
          node.classList.add('jp-mod-pending');
        }
        const who = entry.source === 'cell' ? 'You (cell)' : 'You';
        node.append(el('div', 'jp-AgentPanel-role', who), el('div', 'jp-AgentPanel-text', entry.text));
        break;
      }
      case 'assistant': {
        const label = phaseLabel(entry.phase ?? null);
        if (label) {
          const badge = el('div', `jp-AgentPanel-phase jp-AgentPanel-phase-${entry.phase}`, label);
          node.append(badge);
          node.dataset.phase = String(entry.phase);
        }
        let view = this._views.get(entry.key);
        if (!view) {
          view = new MarkdownView(this._rendermime, () => this._codeActions);
          this._views.set(entry.key, view);
        }
        view.update(entry.text, Boolean(entry.done));
        node.append(view.node);
        break;
      }
      case 'reasoning':
        node.append(el('div', 'jp-AgentPanel-role', 'Thinking'), el('div', 'jp-AgentPanel-text', entry.text));
        break;
      case 'search':
        node.dataset.status = entry.status ?? '';
        node.append(iconNode(searchIcon), el('span', 'jp-AgentPanel-text', entry.text));
        break;
      case 'tool':
        node.dataset.status = entry.status ?? '';
        {
          // A call's arguments can be a whole cell: the row shows three lines, the tooltip all of it.
          const call = el('code', 'jp-AgentPanel-text', entry.text);
          call.title = entry.text;
          node.append(iconNode(buildIcon), call);
        }
        break;
      case 'approval': {
        node.append(el('div', 'jp-AgentPanel-role', 'Approval needed'), el('code', 'jp-AgentPanel-text', entry.text));
        if (entry.previewKind) {
          node.append(previewNode(entry));
        }
        if (entry.decision) {
          node.append(el('div', 'jp-AgentPanel-decision', decisionText(entry.decision)));
        } else {
          const row = el('div', 'jp-AgentPanel-approvalButtons');
          const buttons: [string, 'approve' | 'approve_always' | 'deny', string][] = [
            ['Approve', 'approve', 'jp-mod-accept'],
            ['Always', 'approve_always', ''],
            ['Deny', 'deny', 'jp-mod-warn']
          ];
          for (const [label, decision, cls] of buttons) {
            const b = el('button', `jp-mod-styled ${cls} jp-AgentPanel-${decision}`, label);
            b.addEventListener('click', () => {
              row.querySelectorAll('button').forEach(x => (x.disabled = true));
              this._connection?.approve(entry.callId ?? '', decision);
            });
            row.append(b);
          }
          node.append(row);
        }
        break;
      }
      case 'warning':
        node.append(el('span', 'jp-AgentPanel-icon', '⚠'), el('span', 'jp-AgentPanel-text', entry.text));
        break;
      case 'error':
        node.append(el('span', 'jp-AgentPanel-icon', '✖'), el('span', 'jp-AgentPanel-text', entry.text));
        break;
      default:
        node.append(el('span', 'jp-AgentPanel-text', entry.text));
    }
    return node;
  }
}

/** The approval card's preview: the code a call runs, or its diff with added/removed lines coloured. */
function previewNode(entry: Entry): HTMLElement {
  const pre = el('pre', `jp-AgentPanel-preview jp-mod-${entry.previewKind}`);
  pre.dataset.language = entry.previewLanguage ?? '';
  if (entry.previewKind === 'diff') {
    for (const line of diffLines(entry.preview ?? '')) {
      pre.append(el('span', `jp-AgentPanel-diffLine jp-mod-${line.kind}`, line.text + '\n'));
    }
  } else {
    pre.textContent = entry.preview ?? '';
  }
  return pre;
}

function iconNode(icon: LabIcon): HTMLElement {
  return icon.element({
    tag: 'span',
    className: 'jp-AgentPanel-icon',
    elementPosition: 'center',
    height: '12px',
    width: '12px'
  });
}

function decisionText(decision: string): string {
  switch (decision) {
    case 'approve':
      return 'Approved';
    case 'approve_always':
      return 'Approved (always)';
    case 'deny':
      return 'Denied';
    default:
      return 'Cancelled';
  }
}
