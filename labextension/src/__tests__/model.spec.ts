import { ChatModel, contextItem, gaugeItems, windowLabel } from '../model';

const ev = (event: Record<string, unknown>) => ({ type: 'event', event: { turn_id: 't1', ...event } });
const state = {
  type: 'state',
  model: 'gpt-5.2',
  provider: 'compatible',
  transport: 'sse',
  rate_limits: {},
  busy: false
};

function connected(): ChatModel {
  const m = new ChatModel();
  expect(m.receive(state)).toBe(true);
  return m;
}

describe('ChatModel', () => {
  it('streams deltas into one assistant entry per item, with its phase', () => {
    const m = connected();
    let changes = 0;
    m.changed.connect(() => (changes += 1));
    m.receive(ev({ type: 'turn_started', prompt: 'hi', model: 'gpt-5.2', source: 'cell', title: '' }));
    m.receive(ev({ type: 'text_delta', delta: 'Let me ', item_id: 'a', phase: 'commentary' }));
    m.receive(ev({ type: 'text_delta', delta: 'check.', item_id: 'a', phase: 'commentary' }));
    m.receive(ev({ type: 'text_delta', delta: 'Paris', item_id: 'b', phase: 'final_answer' }));
    expect(m.busy).toBe(true);
    expect(m.entries.map(e => [e.kind, e.text, e.phase ?? null])).toEqual([
      ['user', 'hi', null],
      ['assistant', 'Let me check.', 'commentary'],
      ['assistant', 'Paris', 'final_answer']
    ]);
    expect(m.entries[0].source).toBe('cell');
    m.receive(ev({ type: 'message_done', text: 'Paris.', item_id: 'b', phase: 'final_answer' }));
    m.receive(ev({ type: 'turn_done', status: 'completed', text: 'Paris.' }));
    expect(m.entries[2]).toMatchObject({ text: 'Paris.', done: true });
    expect(m.entries[1].done).toBe(true);
    expect(m.busy).toBe(false);
    expect(changes).toBe(6);
  });

  it('confirms a pending panel prompt instead of duplicating it', () => {
    const m = connected();
    m.addPending('p1', 'hello');
    expect(m.entries[0]).toMatchObject({ kind: 'user', pending: true });
    m.receive(ev({ type: 'turn_started', prompt: 'hello', model: 'm', source: 'panel', title: '' }));
    expect(m.entries).toHaveLength(1);
    expect(m.entries[0]).toMatchObject({ pending: false, turnId: 't1' });
  });

  it('shows the title of a generated prompt (a fix request) instead of the prompt', () => {
    const m = connected();
    const prompt = 'Fix the error in cell 1 of my notebook.\n\nThe cell source: ...';
    m.receive(ev({ type: 'turn_started', prompt, model: 'm', source: 'panel', title: 'Fix the error in cell 1' }));
    expect(m.entries[0]).toMatchObject({ kind: 'user', text: 'Fix the error in cell 1' });
  });

  it('shows web-search progress, reroute warnings, retries and errors', () => {
    const m = connected();
    m.receive(ev({ type: 'turn_started', prompt: 'q', model: 'm', source: 'panel', title: '' }));
    m.receive(ev({ type: 'web_search', item_id: 'ws', status: 'in_progress', action: null, detail: '' }));
    expect(m.entries[1]).toMatchObject({ kind: 'search', text: 'Searching the web' });
    m.receive(
      ev({ type: 'web_search', item_id: 'ws', status: 'completed', action: 'search', detail: 'weather seattle' })
    );
    expect(m.entries[1]).toMatchObject({ kind: 'search', text: 'Searched weather seattle', status: 'completed' });
    m.receive(
      ev({ type: 'reroute_warning', from_model: 'gpt-5.2', to_model: 'gpt-5-mini', message: 'Rerouted to gpt-5-mini.' })
    );
    expect(m.entries[2]).toMatchObject({ kind: 'warning', text: 'Rerouted to gpt-5-mini.' });
    m.receive(ev({ type: 'text_delta', delta: 'partial', item_id: 'x', phase: null }));
    m.receive(ev({ type: 'retry', attempt: 1, max_attempts: 5, delay: 0.1, reason: 'reset' }));
    m.receive(ev({ type: 'retry', attempt: 2, max_attempts: 5, delay: 0.2, reason: 'reset' }));
    // The failed attempt's text is gone; one retry line, updated in place.
    expect(m.entries.filter(e => e.kind === 'assistant')).toHaveLength(0);
    expect(m.entries.filter(e => e.kind === 'retry').map(e => e.text)).toEqual(['Reconnecting... 2/5']);
    m.receive(ev({ type: 'error', message: 'boom', retryable: false, code: 'server_error' }));
    m.receive(ev({ type: 'turn_done', status: 'failed', text: '' }));
    expect(m.entries.map(e => e.kind)).toEqual(['user', 'search', 'warning', 'error', 'status']);
    expect(m.entries[4].text).toBe('The turn failed.');
  });

  it('marks an interrupted turn and keeps the partial answer', () => {
    const m = connected();
    m.receive(ev({ type: 'turn_started', prompt: 'long', model: 'm', source: 'panel', title: '' }));
    m.receive(ev({ type: 'text_delta', delta: 'Once upon', item_id: 'a', phase: 'final_answer' }));
    m.receive(ev({ type: 'turn_done', status: 'interrupted', text: 'Once upon' }));
    expect(m.entries.map(e => [e.kind, e.text])).toEqual([
      ['user', 'long'],
      ['assistant', 'Once upon'],
      ['status', 'Stopped.']
    ]);
    expect(m.busy).toBe(false);
  });

  it('tracks approvals and tool calls', () => {
    const m = connected();
    const none = { preview: '', preview_kind: '', preview_language: '' };
    m.receive(ev({ type: 'approval_request', call_id: 'c1', name: 'run_code', arguments: '{"code":"1+1"}', ...none }));
    expect(m.entries[0]).toMatchObject({ kind: 'approval', callId: 'c1', text: 'run_code({"code":"1+1"})' });
    m.receive(ev({ type: 'approval_resolved', call_id: 'c1', decision: 'approve' }));
    m.receive(ev({ type: 'tool_call', call_id: 'c1', name: 'run_code', arguments: '{}' }));
    m.receive(ev({ type: 'tool_result', call_id: 'c1', name: 'run_code', output: '2', is_error: false }));
    expect(m.entries[0].decision).toBe('approve');
    expect(m.entries[1]).toMatchObject({ kind: 'tool', status: 'done' });
  });

  it('keeps the preview of a cell tool and leaves the source out of the summary', () => {
    const m = connected();
    const diff = '--- cell 0 (now)\n+++ cell 0 (proposed)\n@@ -1 +1 @@\n-1/0\n+1/1';
    m.receive(
      ev({
        type: 'approval_request',
        call_id: 'c2',
        name: 'edit_cell',
        arguments: '{"cell":"abc","source":"1/1"}',
        preview: diff,
        preview_kind: 'diff',
        preview_language: 'diff'
      })
    );
    expect(m.entries[0]).toMatchObject({
      kind: 'approval',
      text: 'edit_cell(cell="abc")',
      preview: diff,
      previewKind: 'diff'
    });
  });

  it('drops an approval request without its preview fields', () => {
    const m = connected();
    m.receive(ev({ type: 'approval_request', call_id: 'c3', name: 'x', arguments: '{}' }));
    expect(m.entries).toEqual([]);
  });

  it('keeps the latest snapshot per rate-limit bucket', () => {
    const m = new ChatModel();
    m.receive({
      ...state,
      rate_limits: { codex: { limit_id: 'codex', primary: { used_percent: 10, window_minutes: 300 } } }
    });
    m.receive(
      ev({
        type: 'rate_limits',
        snapshot: {
          limit_id: 'codex',
          primary: { used_percent: 55, window_minutes: 300 },
          secondary: { used_percent: 12, window_minutes: 10080 }
        }
      })
    );
    m.receive(
      ev({
        type: 'rate_limits',
        snapshot: { limit_id: 'requests', limit_name: 'requests', primary: { used_percent: 99.6 } }
      })
    );
    expect(gaugeItems(m.rateLimits).map(g => [g.label, Math.round(g.percent)])).toEqual([
      ['codex 5h', 55],
      ['codex 1w', 12],
      ['requests primary', 100]
    ]);
  });

  it('replaces the transcript on history and keeps pending prompts', () => {
    const m = connected();
    m.receive(ev({ type: 'text_delta', delta: 'old', item_id: 'a', phase: null }));
    m.addPending('p', 'waiting');
    m.receive({
      type: 'history',
      messages: [
        { role: 'user', text: 'What is 2+2?', phase: null },
        { role: 'warning', text: 'Warning: rerouted', phase: null },
        { role: 'assistant', text: '4', phase: 'final_answer' }
      ]
    });
    expect(m.entries.map(e => [e.kind, e.text])).toEqual([
      ['user', 'What is 2+2?'],
      ['warning', 'rerouted'],
      ['assistant', '4'],
      ['user', 'waiting']
    ]);
  });

  it('drops malformed messages without changing anything', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const m = connected();
    m.receive(ev({ type: 'turn_started', prompt: 'hi', model: 'm', source: 'cell', title: '' }));
    const before = JSON.stringify(m.entries);
    let changes = 0;
    m.changed.connect(() => (changes += 1));
    expect(m.receive({ type: 'event', event: { type: 'text_delta', turn_id: 't1', delta: null } })).toBe(false);
    expect(m.receive('garbage')).toBe(false);
    expect(m.receive({ type: 'state', model: 1 })).toBe(false);
    expect(JSON.stringify(m.entries)).toBe(before);
    expect(m.model).toBe('gpt-5.2');
    expect(changes).toBe(0);
    expect(m.invalidMessages).toBe(3);
    expect(warn).toHaveBeenCalledTimes(3);
    warn.mockRestore();
  });

  it('shows kernel error replies and clears busy on disconnect', () => {
    const m = connected();
    m.receive({ type: 'error', message: 'message is 300000 bytes; the limit is 262144', request_type: 'send' });
    expect(m.entries[0]).toMatchObject({ kind: 'error' });
    m.receive(ev({ type: 'turn_started', prompt: 'hi', model: 'm', source: 'cell', title: '' }));
    expect(m.busy).toBe(true);
    m.setStatus('restarting');
    expect(m.busy).toBe(false);
  });
});

describe('windowLabel', () => {
  it.each([
    [300, '5h'],
    [10080, '1w'],
    [1440, '1d'],
    [45, '45m']
  ])('%d minutes is %s', (minutes, label) => expect(windowLabel(minutes)).toBe(label));

  it('keeps the last context gauge and marks a compaction (issue 14)', () => {
    const m = connected();
    const totals = {
      input_tokens: 9,
      cached_input_tokens: 0,
      output_tokens: 1,
      reasoning_output_tokens: 0,
      total_tokens: 10
    };
    expect(m.receive(ev({ type: 'context', input_tokens: 7200, window: 8000, source: 'table', totals }))).toBe(true);
    expect(contextItem(m.context)).toMatchObject({ label: 'Context', percent: 90, value: '90%' });
    m.receive(ev({ type: 'context', input_tokens: 1234, window: null, source: 'unknown', totals }));
    expect(contextItem(m.context)).toMatchObject({ percent: null, value: '1,234 tok' });
    expect(m.receive(ev({ type: 'context', input_tokens: 'many', window: null, source: 'x', totals }))).toBe(false);
    m.receive(
      ev({
        type: 'compacted',
        reason: 'threshold',
        items_before: 40,
        items_after: 6,
        input_tokens_before: 7200,
        method: 'summary'
      })
    );
    expect(m.entries[m.entries.length - 1]).toMatchObject({
      kind: 'notice',
      text: 'Conversation compacted (the context was nearly full): 40 history items became 6 (a summary written by the model).'
    });
  });
});
