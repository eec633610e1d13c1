import {
  MAX_TEXT_BYTES,
  checkEvent,
  checkPanelMessage,
  parseKernelMessage,
  phaseLabel,
  retryText,
  webSearchText
} from '../protocol';

const state = {
  type: 'state',
  model: 'gpt-5.2',
  provider: 'compatible',
  transport: 'sse',
  rate_limits: {
    codex: { limit_id: 'codex', primary: { used_percent: 42, window_minutes: 300, resets_at: 1700000000 } }
  },
  busy: false,
  version: 1
};

describe('parseKernelMessage', () => {
  it('accepts the four kernel message types', () => {
    expect(parseKernelMessage(state).ok).toBe(true);
    expect(parseKernelMessage({ type: 'history', messages: [{ role: 'user', text: 'hi', phase: null }] }).ok).toBe(
      true
    );
    expect(
      parseKernelMessage({
        type: 'event',
        event: { type: 'text_delta', turn_id: 't', delta: 'x', item_id: 'm', phase: 'final_answer' }
      }).ok
    ).toBe(true);
    expect(parseKernelMessage({ type: 'error', message: 'bad', request_type: null }).ok).toBe(true);
  });

  it.each([
    [null, 'message should be an object'],
    [[], 'message should be an object'],
    [{ type: 'nope' }, 'unknown message type "nope"'],
    [{ ...state, busy: 'yes' }, 'state: field "busy" should be boolean'],
    [{ ...state, rate_limits: { x: { limit_id: 'x', primary: { used_percent: 'lots' } } } }, 'state.rate_limits'],
    [{ type: 'history', messages: 'hi' }, 'history: field "messages" should be array'],
    [{ type: 'history', messages: [{ role: 'user' }] }, 'history message: field "text" should be string'],
    [
      { type: 'event', event: { type: 'text_delta', turn_id: 't', delta: 5, item_id: 'm', phase: null } },
      'text_delta: field "delta"'
    ],
    [
      { type: 'event', event: { type: 'text_delta', turn_id: 't', delta: 'x', item_id: 'm', phase: 'shouting' } },
      'field "phase"'
    ],
    [{ type: 'event', event: { type: 'mystery', turn_id: 't' } }, 'unknown event type "mystery"'],
    [{ type: 'event', event: { type: 'turn_done', status: 'completed', text: '' } }, 'field "turn_id"'],
    [{ type: 'error', message: 3 }, 'error: field "message" should be string']
  ])('rejects %j', (data, error) => {
    const parsed = parseKernelMessage(data);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.error).toContain(error);
  });

  it('validates nested rate-limit snapshots in events', () => {
    const good = { type: 'rate_limits', turn_id: '', snapshot: { limit_id: 'codex', primary: { used_percent: 10 } } };
    expect(checkEvent(good)).toBeNull();
    expect(checkEvent({ ...good, snapshot: null })).toBeNull();
    expect(checkEvent({ ...good, snapshot: { primary: { used_percent: 1 } } })).toContain('limit_id');
    expect(checkEvent({ ...good, snapshot: { limit_id: 'x', secondary: 7 } })).toContain('secondary');
  });
});

describe('checkPanelMessage', () => {
  it('enforces the kernel limits before sending', () => {
    expect(checkPanelMessage({ type: 'send', id: '1', text: 'hello' })).toBeNull();
    expect(checkPanelMessage({ type: 'send', id: '1', text: '   ' })).toContain('empty');
    expect(checkPanelMessage({ type: 'send', id: '1', text: 'a'.repeat(MAX_TEXT_BYTES) })).toBeNull();
    expect(checkPanelMessage({ type: 'send', id: '1', text: 'a'.repeat(MAX_TEXT_BYTES + 1) })).toContain(
      'limit is 100 kB'
    );
    // UTF-8 bytes, not characters: 40k euro signs are 120 kB.
    expect(checkPanelMessage({ type: 'send', id: '1', text: '€'.repeat(40000) })).toContain('limit');
    expect(checkPanelMessage({ type: 'stop' })).toBeNull();
  });
});

describe('display text', () => {
  it('matches the cell vocabulary', () => {
    expect(phaseLabel('commentary')).toBe('Commentary');
    expect(phaseLabel('final_answer')).toBe('Final answer');
    expect(phaseLabel(null)).toBe('');
    expect(webSearchText({ status: 'in_progress', detail: '' })).toBe('Searching the web');
    expect(webSearchText({ status: 'completed', detail: 'weather seattle' })).toBe('Searched weather seattle');
    expect(retryText({ attempt: 2, max_attempts: 5 })).toBe('Reconnecting... 2/5');
  });
});
