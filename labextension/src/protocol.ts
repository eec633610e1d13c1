/**
 * The comm protocol between the Agent panel and `jupyter_agent/comm.py`, typed and validated
 * at runtime on this side too (the kernel validates with pydantic).
 *
 * panel -> kernel: hello, send, stop, approval, history, notebook (answers notebook_request), fix (a
 * turn that explains a cell's error and proposes the fix).
 * kernel -> panel: state, history, event (an AgentEvent from `events.py`), error, notebook_request.
 */

import type { JSONObject } from '@lumino/coreutils';

export const COMM_TARGET = 'jupyter_agent';
export const PROTOCOL_VERSION = 1;
export const MAX_TEXT_BYTES = 100 * 1024;
export const MAX_MESSAGE_BYTES = 256 * 1024;

export type Phase = 'commentary' | 'final_answer' | null;
export type Decision = 'approve' | 'approve_always' | 'deny';

// --- agent events (mirror of jupyter_agent/events.py) -------------------------------------

export interface RateLimitWindow {
  used_percent: number;
  window_minutes?: number | null;
  resets_at?: number | null;
  limit?: number | null;
  remaining?: number | null;
}

export interface Credits {
  has_credits: boolean;
  unlimited: boolean;
  balance?: string | null;
}

export interface RateLimitSnapshot {
  limit_id: string;
  limit_name?: string | null;
  primary?: RateLimitWindow | null;
  secondary?: RateLimitWindow | null;
  credits?: Credits | null;
  plan_type?: string | null;
  source?: string;
  captured_at?: number;
}

export interface Usage {
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_output_tokens: number;
  total_tokens: number;
}

interface Base {
  turn_id: string;
}

export interface TurnStarted extends Base {
  type: 'turn_started';
  prompt: string;
  model: string;
  source: string;
  /** A short label shown instead of a generated prompt (`%agent fix`); '' shows the prompt. */
  title: string;
}
export interface TurnDone extends Base {
  type: 'turn_done';
  status: string;
  text: string;
}
export interface TextDelta extends Base {
  type: 'text_delta';
  delta: string;
  item_id: string;
  phase: Phase;
}
export interface MessageDone extends Base {
  type: 'message_done';
  text: string;
  item_id: string;
  phase: Phase;
}
export interface ReasoningDelta extends Base {
  type: 'reasoning_delta';
  delta: string;
  item_id: string;
  kind: 'summary' | 'content';
  index: number;
}
export interface WebSearch extends Base {
  type: 'web_search';
  item_id: string;
  status: string;
  action: string | null;
  detail: string;
  query?: string | null;
  url?: string | null;
  pattern?: string | null;
}
export interface ToolCall extends Base {
  type: 'tool_call';
  call_id: string;
  name: string;
  arguments: string;
}
export interface ToolResult extends Base {
  type: 'tool_result';
  call_id: string;
  name: string;
  output: string;
  is_error: boolean;
}
export interface ApprovalRequest extends Base {
  type: 'approval_request';
  call_id: string;
  name: string;
  arguments: string;
  /** The code the call runs or a unified diff of its change ('' when the tool has none). */
  preview: string;
  /** 'code' | 'diff' | '' */
  preview_kind: string;
  preview_language: string;
}
export interface ApprovalResolved extends Base {
  type: 'approval_resolved';
  call_id: string;
  decision: string;
}
export interface RateLimits extends Base {
  type: 'rate_limits';
  snapshot: RateLimitSnapshot | null;
}
export interface ServerModel extends Base {
  type: 'server_model';
  model: string;
}
export interface RerouteWarning extends Base {
  type: 'reroute_warning';
  from_model: string;
  to_model: string;
  message: string;
}
export interface Retry extends Base {
  type: 'retry';
  attempt: number;
  max_attempts: number;
  delay: number;
  reason: string;
}
export interface ErrorEvent extends Base {
  type: 'error';
  message: string;
  retryable: boolean;
  code: string | null;
}
export interface Notice extends Base {
  type: 'notice';
  level: 'info' | 'warning';
  message: string;
}
export interface UsageEvent extends Base {
  type: 'usage';
  usage: Usage;
}
export interface ContextGauge extends Base {
  type: 'context';
  input_tokens: number;
  window: number | null;
  source: string;
  totals: Usage;
}
export interface Compacted extends Base {
  type: 'compacted';
  reason: string;
  items_before: number;
  items_after: number;
  input_tokens_before: number;
  method: string;
}
export interface Telemetry extends Base {
  type: 'telemetry';
  summary: Record<string, unknown>;
  line: string;
}
export interface RealtimeEvent extends Base {
  type: 'realtime';
  kind: string;
  payload: Record<string, unknown>;
}

export type AgentEvent =
  | TurnStarted
  | TurnDone
  | TextDelta
  | MessageDone
  | ReasoningDelta
  | WebSearch
  | ToolCall
  | ToolResult
  | ApprovalRequest
  | ApprovalResolved
  | RateLimits
  | ServerModel
  | RerouteWarning
  | Retry
  | ErrorEvent
  | Notice
  | UsageEvent
  | ContextGauge
  | Compacted
  | Telemetry
  | RealtimeEvent;

// --- kernel -> panel ------------------------------------------------------------------------

export interface StateMessage {
  type: 'state';
  model: string;
  provider: string;
  transport: string;
  rate_limits: Record<string, RateLimitSnapshot>;
  busy: boolean;
  version?: number;
}

export interface TranscriptEntry {
  role: string;
  text: string;
  /** A `Phase` from the model; history may carry other strings (shown unlabelled). */
  phase: string | null;
}

export interface HistoryMessage {
  type: 'history';
  messages: TranscriptEntry[];
}

export interface EventMessage {
  type: 'event';
  event: AgentEvent;
}

export interface ErrorMessage {
  type: 'error';
  message: string;
  request_type: string | null;
}

export interface NotebookRequest {
  type: 'notebook_request';
  id: string;
}

export type KernelMessage = StateMessage | HistoryMessage | EventMessage | ErrorMessage | NotebookRequest;

// --- panel -> kernel ------------------------------------------------------------------------

export type PanelMessage =
  | { type: 'hello'; version: number; resume?: boolean; notebook?: string; features?: string[] }
  | { type: 'send'; id: string; text: string }
  | { type: 'stop' }
  | { type: 'approval'; call_id: string; decision: Decision }
  | { type: 'fix'; cell_id: string }
  | { type: 'history' }
  | { type: 'notebook'; id: string; cells: JSONObject[]; result?: JSONObject; error?: string };

// --- runtime validation ---------------------------------------------------------------------

/** Field kinds: a trailing `?` allows null/undefined. */
export type Kind = 'string' | 'number' | 'boolean' | 'object' | 'array' | 'phase' | 'string?' | 'number?' | 'object?';

/**
 * Every field of every event in `jupyter_agent/events.py` (besides `type` and `turn_id`) with its
 * kind. `tests/test_protocol_parity.py` reads this object literal (keep it a plain literal: keys,
 * quoted kinds, nothing computed) and fails when it and the Python dataclasses drift apart.
 */
export const EVENT_FIELDS: Record<AgentEvent['type'], Record<string, Kind>> = {
  turn_started: { prompt: 'string', model: 'string', source: 'string', title: 'string' },
  turn_done: { status: 'string', text: 'string' },
  text_delta: { delta: 'string', item_id: 'string', phase: 'phase' },
  message_done: { text: 'string', item_id: 'string', phase: 'phase' },
  reasoning_delta: { delta: 'string', item_id: 'string', kind: 'string', index: 'number' },
  web_search: {
    item_id: 'string',
    status: 'string',
    action: 'string?',
    detail: 'string',
    query: 'string?',
    url: 'string?',
    pattern: 'string?'
  },
  tool_call: { call_id: 'string', name: 'string', arguments: 'string' },
  tool_result: { call_id: 'string', name: 'string', output: 'string', is_error: 'boolean' },
  approval_request: {
    call_id: 'string',
    name: 'string',
    arguments: 'string',
    preview: 'string',
    preview_kind: 'string',
    preview_language: 'string'
  },
  approval_resolved: { call_id: 'string', decision: 'string' },
  rate_limits: { snapshot: 'object?' },
  server_model: { model: 'string' },
  reroute_warning: { from_model: 'string', to_model: 'string', message: 'string' },
  retry: { attempt: 'number', max_attempts: 'number', delay: 'number', reason: 'string' },
  error: { message: 'string', retryable: 'boolean', code: 'string?' },
  notice: { level: 'string', message: 'string' },
  usage: { usage: 'object' },
  context: { input_tokens: 'number', window: 'number?', source: 'string', totals: 'object' },
  compacted: {
    reason: 'string',
    items_before: 'number',
    items_after: 'number',
    input_tokens_before: 'number',
    method: 'string'
  },
  telemetry: { summary: 'object', line: 'string' },
  realtime: { kind: 'string', payload: 'object' }
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKind(value: unknown, kind: Kind): boolean {
  const optional = kind.endsWith('?');
  if (optional && (value === null || value === undefined)) {
    return true;
  }
  switch (kind.replace('?', '')) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'phase':
      return value === null || value === undefined || value === 'commentary' || value === 'final_answer';
  }
  return false;
}

function checkFields(obj: Record<string, unknown>, fields: Record<string, Kind>, what: string): string | null {
  for (const [name, kind] of Object.entries(fields)) {
    if (!checkKind(obj[name], kind)) {
      return `${what}: field "${name}" should be ${kind}`;
    }
  }
  return null;
}

function checkWindow(value: unknown, what: string): string | null {
  if (value === null || value === undefined) {
    return null;
  }
  if (!isObject(value)) {
    return `${what} should be an object`;
  }
  return checkFields(value, { used_percent: 'number', window_minutes: 'number?', resets_at: 'number?' }, what);
}

/** Validate a rate-limit snapshot; returns an error text or null. */
export function checkSnapshot(value: unknown): string | null {
  if (!isObject(value)) {
    return 'snapshot should be an object';
  }
  return (
    checkFields(value, { limit_id: 'string', limit_name: 'string?' }, 'snapshot') ??
    checkWindow(value.primary, 'snapshot.primary') ??
    checkWindow(value.secondary, 'snapshot.secondary')
  );
}

/** Validate an agent event; returns an error text or null. */
export function checkEvent(value: unknown): string | null {
  if (!isObject(value)) {
    return 'event should be an object';
  }
  const type = value.type;
  if (typeof type !== 'string' || !(type in EVENT_FIELDS)) {
    return `unknown event type ${JSON.stringify(type)}`;
  }
  if (typeof value.turn_id !== 'string') {
    return `${type}: field "turn_id" should be string`;
  }
  const err = checkFields(value, EVENT_FIELDS[type as AgentEvent['type']], type);
  if (err) {
    return err;
  }
  if (type === 'rate_limits' && value.snapshot !== null && value.snapshot !== undefined) {
    return checkSnapshot(value.snapshot);
  }
  return null;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Validate one kernel -> panel message. */
export function parseKernelMessage(data: unknown): Parsed<KernelMessage> {
  const fail = (error: string): Parsed<KernelMessage> => ({ ok: false, error });
  if (!isObject(data)) {
    return fail('message should be an object');
  }
  switch (data.type) {
    case 'state': {
      const err = checkFields(
        data,
        { model: 'string', provider: 'string', transport: 'string', rate_limits: 'object', busy: 'boolean' },
        'state'
      );
      if (err) {
        return fail(err);
      }
      for (const snap of Object.values(data.rate_limits as Record<string, unknown>)) {
        const e = checkSnapshot(snap);
        if (e) {
          return fail(`state.rate_limits: ${e}`);
        }
      }
      return { ok: true, value: data as unknown as StateMessage };
    }
    case 'history': {
      if (!Array.isArray(data.messages)) {
        return fail('history: field "messages" should be array');
      }
      for (const m of data.messages) {
        if (!isObject(m)) {
          return fail('history: messages should be objects');
        }
        const e = checkFields(m, { role: 'string', text: 'string', phase: 'string?' }, 'history message');
        if (e) {
          return fail(e);
        }
      }
      return { ok: true, value: data as unknown as HistoryMessage };
    }
    case 'event': {
      const e = checkEvent(data.event);
      return e ? fail(e) : { ok: true, value: data as unknown as EventMessage };
    }
    case 'error': {
      const e = checkFields(data, { message: 'string', request_type: 'string?' }, 'error');
      return e ? fail(e) : { ok: true, value: data as unknown as ErrorMessage };
    }
    case 'notebook_request': {
      const e = checkFields(data, { id: 'string' }, 'notebook_request');
      return e ? fail(e) : { ok: true, value: data as unknown as NotebookRequest };
    }
  }
  return fail(`unknown message type ${JSON.stringify(data.type)}`);
}

/** UTF-8 length of a string. */
export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** Check an outgoing message against the same limits the kernel enforces. */
export function checkPanelMessage(msg: PanelMessage): string | null {
  if (msg.type === 'send') {
    if (!msg.text.trim()) {
      return 'The message is empty.';
    }
    const size = utf8Length(msg.text);
    if (size > MAX_TEXT_BYTES) {
      return `The message is ${Math.ceil(size / 1024)} kB; the limit is ${MAX_TEXT_BYTES / 1024} kB.`;
    }
  }
  if (utf8Length(JSON.stringify(msg)) > MAX_MESSAGE_BYTES) {
    return `The message is larger than ${MAX_MESSAGE_BYTES / 1024} kB.`;
  }
  return null;
}

// --- display text shared with the cell renderer -----------------------------------------

export function phaseLabel(phase: string | null | undefined): string {
  if (phase === 'commentary') {
    return 'Commentary';
  }
  if (phase === 'final_answer') {
    return 'Final answer';
  }
  return '';
}

export function webSearchText(event: Pick<WebSearch, 'status' | 'detail'>): string {
  if (event.status !== 'completed') {
    return 'Searching the web';
  }
  return `Searched ${event.detail}`.trimEnd();
}

export function retryText(event: Pick<Retry, 'attempt' | 'max_attempts'>): string {
  return `Reconnecting... ${event.attempt}/${event.max_attempts}`;
}
