import { ISessionContext } from '@jupyterlab/apputils';
import { AgentConnection } from '../connection';

type Handler = (sender: unknown, value: unknown) => void;

class FakeSignal {
  private handlers: { fn: Handler; thisArg: unknown }[] = [];
  connect(fn: Handler, thisArg?: unknown): boolean {
    this.handlers.push({ fn, thisArg });
    return true;
  }
  disconnect(fn: Handler): boolean {
    this.handlers = this.handlers.filter(h => h.fn !== fn);
    return true;
  }
  emit(sender: unknown, value: unknown): void {
    for (const h of [...this.handlers]) {
      h.fn.call(h.thisArg, sender, value);
    }
  }
}

class FakeComm {
  opened: unknown[] = [];
  sent: unknown[] = [];
  closed = false;
  isDisposed = false;
  onMsg: ((msg: { content: { data: unknown } }) => void) | null = null;
  onClose: ((msg: unknown) => void) | null = null;
  open(data: unknown) {
    this.opened.push(data);
  }
  send(data: unknown) {
    this.sent.push(data);
  }
  close() {
    this.closed = true;
  }
  reply(data: unknown) {
    this.onMsg?.({ content: { data } });
  }
  kernelCloses() {
    this.onClose?.({});
  }
}

class FakeKernel {
  status = 'idle';
  statusChanged = new FakeSignal();
  iopubMessage = new FakeSignal();
  comms: FakeComm[] = [];
  executed: string[] = [];
  createComm() {
    const c = new FakeComm();
    this.comms.push(c);
    return c;
  }
  requestExecute(content: { code: string }) {
    this.executed.push(content.code);
    return { onIOPub: null, done: Promise.resolve({ content: { status: 'ok' } }) };
  }
  setStatus(s: string) {
    this.status = s;
    this.statusChanged.emit(this, s);
  }
  get lastComm(): FakeComm {
    return this.comms[this.comms.length - 1];
  }
}

const STATE = { type: 'state', model: 'm', provider: 'p', transport: 'sse', rate_limits: {}, busy: false };
const HISTORY = { type: 'history', messages: [{ role: 'user', text: 'earlier', phase: null }] };

async function setup(reload = true) {
  const kernel = new FakeKernel();
  const session = { kernelChanged: new FakeSignal(), ready: Promise.resolve(), session: { kernel } };
  const conn = new AgentConnection(session as unknown as ISessionContext, { reloadAfterRestart: () => reload });
  await Promise.resolve();
  await Promise.resolve();
  return { kernel, session, conn };
}

const flush = () => new Promise(r => setTimeout(r, 0));

describe('AgentConnection', () => {
  it('opens the comm with hello and goes connected on the state reply', async () => {
    const { kernel, conn } = await setup();
    expect(kernel.lastComm.opened).toEqual([{ type: 'hello', version: 1 }]);
    expect(conn.model.status).toBe('connecting');
    kernel.lastComm.reply(STATE);
    kernel.lastComm.reply(HISTORY);
    expect(conn.model.status).toBe('connected');
    expect(conn.model.entries.map(e => e.text)).toEqual(['earlier']);
  });

  it('reports not-loaded when the kernel closes an unanswered comm, and loads on request', async () => {
    const { kernel, conn } = await setup();
    kernel.lastComm.kernelCloses();
    expect(conn.model.status).toBe('not-loaded');
    await conn.loadExtension();
    expect(kernel.executed).toEqual(['%load_ext jupyter_agent']);
    expect(kernel.comms).toHaveLength(2);
    kernel.lastComm.reply(STATE);
    expect(conn.model.status).toBe('connected');
  });

  it('connects by itself after a cell loads the extension', async () => {
    const { kernel, conn } = await setup();
    kernel.lastComm.kernelCloses();
    kernel.iopubMessage.emit(kernel, {
      header: { msg_type: 'execute_input' },
      content: { code: '%load_ext jupyter_agent' }
    });
    kernel.setStatus('busy');
    expect(kernel.comms).toHaveLength(1);
    kernel.setStatus('idle');
    expect(kernel.comms).toHaveLength(2);
    expect(conn.model.status).toBe('not-loaded'); // quiet probe: no flicker
    kernel.lastComm.reply(STATE);
    expect(conn.model.status).toBe('connected');
  });

  it('validates and sends requests; refuses when not connected or too large', async () => {
    const { kernel, conn } = await setup();
    expect(conn.send('too early')).toBe(false);
    expect(conn.model.entries[0].kind).toBe('error');
    kernel.lastComm.reply(STATE);
    expect(conn.send('hello')).toBe(true);
    conn.stop();
    conn.approve('call_1', 'deny');
    expect(conn.send('x'.repeat(100 * 1024 + 1))).toBe(false);
    const sent = kernel.lastComm.sent as Record<string, unknown>[];
    expect(sent.map(m => m.type)).toEqual(['send', 'stop', 'approval']);
    expect(sent[0].text).toBe('hello');
    expect(sent[2]).toEqual({ type: 'approval', call_id: 'call_1', decision: 'deny' });
    expect(conn.model.entries.filter(e => e.pending).map(e => e.text)).toEqual(['hello']);
  });

  it('reloads the extension and reconnects after a kernel restart', async () => {
    const { kernel, conn } = await setup();
    kernel.lastComm.reply(STATE);
    kernel.setStatus('restarting');
    expect(conn.model.status).toBe('restarting');
    kernel.setStatus('starting');
    kernel.setStatus('idle');
    await flush();
    expect(kernel.executed).toEqual(['%load_ext jupyter_agent']);
    expect(kernel.comms).toHaveLength(2);
    expect(kernel.lastComm.opened).toEqual([{ type: 'hello', version: 1, resume: true }]);
    kernel.lastComm.reply(STATE);
    kernel.lastComm.reply(HISTORY);
    expect(conn.model.status).toBe('connected');
    expect(conn.model.entries.map(e => e.text)).toEqual(['earlier']);
  });

  it('only re-probes after a restart when reloading is off', async () => {
    const { kernel, conn } = await setup(false);
    kernel.lastComm.reply(STATE);
    kernel.setStatus('restarting');
    kernel.setStatus('idle');
    await flush();
    expect(kernel.executed).toEqual([]);
    expect(kernel.comms).toHaveLength(2);
    kernel.lastComm.kernelCloses();
    expect(conn.model.status).toBe('not-loaded');
  });

  it('follows a kernel change and closes the old comm', async () => {
    const { kernel, session, conn } = await setup();
    const old = kernel.lastComm;
    const other = new FakeKernel();
    session.kernelChanged.emit(session, { newValue: other });
    expect(old.closed).toBe(true);
    expect(other.comms).toHaveLength(1);
    old.reply(STATE); // late message from the old kernel is ignored
    expect(conn.model.status).toBe('connecting');
    conn.dispose();
    expect(other.lastComm.closed).toBe(true);
  });
});
