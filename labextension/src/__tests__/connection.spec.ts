import { ISessionContext } from '@jupyterlab/apputils';
import { AgentConnection, IConnectionOptions } from '../connection';

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

type Reply = { content: { status: string } };

class FakeKernel {
  status = 'idle';
  connectionStatus = 'connected';
  statusChanged = new FakeSignal();
  iopubMessage = new FakeSignal();
  connectionStatusChanged = new FakeSignal();
  comms: FakeComm[] = [];
  executed: string[] = [];
  /** A hung kernel (as after some Kernel Gateway restarts): execute requests get no reply. */
  hang = false;
  /** Replies held back while hung: answer them late with `answerLate()`. */
  held: ((reply: Reply) => void)[] = [];
  disposedFutures = 0;
  createComm() {
    const c = new FakeComm();
    this.comms.push(c);
    return c;
  }
  requestExecute(content: { code: string }) {
    this.executed.push(content.code);
    const done = this.hang
      ? new Promise<Reply>(resolve => this.held.push(resolve))
      : Promise.resolve({ content: { status: 'ok' } });
    return { onIOPub: null, done, dispose: () => (this.disposedFutures += 1) };
  }
  answerLate() {
    for (const resolve of this.held.splice(0)) {
      resolve({ content: { status: 'ok' } });
    }
  }
  setStatus(s: string) {
    this.status = s;
    this.statusChanged.emit(this, s);
  }
  setConnectionStatus(s: string) {
    this.connectionStatus = s;
    this.connectionStatusChanged.emit(this, s);
  }
  get lastComm(): FakeComm {
    return this.comms[this.comms.length - 1];
  }
}

const STATE = { type: 'state', model: 'm', provider: 'p', transport: 'sse', rate_limits: {}, busy: false };
const HISTORY = { type: 'history', messages: [{ role: 'user', text: 'earlier', phase: null }] };

async function setup(reload = true, extra: Partial<IConnectionOptions> = {}) {
  const kernel = new FakeKernel();
  const session = { kernelChanged: new FakeSignal(), ready: Promise.resolve(), session: { kernel } };
  const conn = new AgentConnection(session as unknown as ISessionContext, {
    reloadAfterRestart: () => reload,
    ...extra
  });
  await Promise.resolve();
  await Promise.resolve();
  return { kernel, session, conn };
}

const flush = () => new Promise(r => setTimeout(r, 0));
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/** What SessionContext.restartKernel does (Kernel menu, toolbar): restart, then re-emit the same kernel. */
function menuRestart(session: { kernelChanged: FakeSignal }, kernel: FakeKernel, emitBeforeIdle: boolean) {
  kernel.setStatus('restarting');
  kernel.setStatus('starting');
  if (emitBeforeIdle) {
    session.kernelChanged.emit(session, { name: 'kernel', oldValue: kernel, newValue: kernel });
    kernel.setStatus('idle');
  } else {
    kernel.setStatus('idle');
    session.kernelChanged.emit(session, { name: 'kernel', oldValue: kernel, newValue: kernel });
  }
}

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
    expect(conn.fix('cell-1')).toBe(true);
    expect(conn.send('x'.repeat(100 * 1024 + 1))).toBe(false);
    const sent = kernel.lastComm.sent as Record<string, unknown>[];
    expect(sent.map(m => m.type)).toEqual(['send', 'stop', 'approval', 'fix']);
    expect(sent[3]).toEqual({ type: 'fix', cell_id: 'cell-1' });
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

  it.each([true, false])(
    'reloads and resumes after a Kernel-menu restart (kernelChanged with the same kernel, before idle: %s)',
    async emitBeforeIdle => {
      const { kernel, session, conn } = await setup();
      kernel.lastComm.reply(STATE);
      menuRestart(session, kernel, emitBeforeIdle);
      await flush();
      expect(kernel.executed).toEqual(['%load_ext jupyter_agent']);
      expect(kernel.comms).toHaveLength(2);
      expect(kernel.lastComm.opened).toEqual([{ type: 'hello', version: 1, resume: true }]);
      kernel.lastComm.reply(STATE);
      kernel.lastComm.reply(HISTORY);
      expect(conn.model.status).toBe('connected');
      expect(conn.model.entries.map(e => e.text)).toEqual(['earlier']);
      // a second menu restart works the same way
      menuRestart(session, kernel, emitBeforeIdle);
      await flush();
      expect(kernel.executed).toHaveLength(2);
      expect(kernel.lastComm.opened).toEqual([{ type: 'hello', version: 1, resume: true }]);
    }
  );

  it('sends the notebook path in hello', async () => {
    const { kernel } = await setup(true, { notebookPath: () => 'work/analysis.ipynb' });
    expect(kernel.lastComm.opened).toEqual([{ type: 'hello', version: 1, notebook: 'work/analysis.ipynb' }]);
  });

  it('times out a load the kernel never answers, says so, and retries when the kernel reconnects', async () => {
    const { kernel, conn } = await setup(true, { loadTimeoutMs: 30 });
    kernel.lastComm.reply(STATE);
    kernel.hang = true;
    kernel.setStatus('restarting');
    kernel.setStatus('idle');
    await flush();
    expect(conn.model.status).toBe('loading');
    await sleep(60);
    expect(conn.model.status).toBe('not-loaded');
    expect(conn.model.lastError).toContain('timed out');
    expect(conn.model.lastError).toContain('Reconnect');
    expect(kernel.comms).toHaveLength(1);
    // Kernel -> Reconnect to Kernel: the websocket drops and comes back; the kernel answers again.
    kernel.hang = false;
    kernel.setConnectionStatus('connecting');
    expect(kernel.executed).toHaveLength(1);
    kernel.setConnectionStatus('connected');
    await flush();
    expect(kernel.executed).toEqual(['%load_ext jupyter_agent', '%load_ext jupyter_agent']);
    expect(kernel.lastComm.opened).toEqual([{ type: 'hello', version: 1, resume: true }]);
    kernel.lastComm.reply(STATE);
    expect(conn.model.status).toBe('connected');
    expect(conn.model.lastError).toBe('');
  });

  it('retries a load cut off by a reconnect before its timeout, ignoring the abandoned attempt', async () => {
    const { kernel, conn } = await setup(true, { loadTimeoutMs: 10000 });
    kernel.lastComm.kernelCloses();
    kernel.hang = true;
    const first = conn.loadExtension();
    await flush();
    kernel.hang = false;
    kernel.setConnectionStatus('disconnected');
    kernel.setConnectionStatus('connected');
    await flush();
    expect(kernel.executed).toHaveLength(2);
    expect(kernel.comms).toHaveLength(2);
    kernel.answerLate(); // the first attempt's reply, late: no second comm
    await first;
    await flush();
    expect(kernel.comms).toHaveLength(2);
    expect(kernel.disposedFutures).toBe(1);
    kernel.lastComm.reply(STATE);
    expect(conn.model.status).toBe('connected');
  });

  it('connects when a timed-out load is answered late after all', async () => {
    const { kernel, conn } = await setup(true, { loadTimeoutMs: 20 });
    kernel.lastComm.kernelCloses();
    kernel.hang = true;
    await conn.loadExtension();
    expect(conn.model.status).toBe('not-loaded');
    expect(kernel.comms).toHaveLength(1);
    kernel.answerLate();
    await flush();
    expect(kernel.comms).toHaveLength(2);
    expect(kernel.lastComm.opened).toEqual([{ type: 'hello', version: 1 }]);
  });

  it('finishes a restart that never reported idle once the kernel reconnects', async () => {
    const { kernel, conn } = await setup();
    kernel.lastComm.reply(STATE);
    kernel.setStatus('restarting');
    kernel.setStatus('starting'); // hung: no idle ever comes
    expect(conn.model.status).toBe('restarting');
    kernel.setConnectionStatus('connecting');
    kernel.setConnectionStatus('connected');
    await flush();
    expect(kernel.executed).toEqual(['%load_ext jupyter_agent']);
    expect(kernel.lastComm.opened).toEqual([{ type: 'hello', version: 1, resume: true }]);
  });

  it('re-sends an unanswered hello after a reconnect, but leaves a connected panel alone', async () => {
    const { kernel, conn } = await setup();
    expect(kernel.comms).toHaveLength(1);
    kernel.setConnectionStatus('connecting');
    kernel.setConnectionStatus('connected');
    expect(kernel.comms).toHaveLength(2);
    kernel.lastComm.reply(STATE);
    kernel.setConnectionStatus('connecting');
    kernel.setConnectionStatus('connected');
    expect(kernel.comms).toHaveLength(2);
    expect(conn.model.status).toBe('connected');
  });

  it('a reconnect during the reload after a restart retries it with resume', async () => {
    const { kernel, conn } = await setup(true, { loadTimeoutMs: 10000 });
    kernel.lastComm.reply(STATE);
    kernel.hang = true; // the restarted kernel reports idle, then ignores shell requests
    kernel.setStatus('restarting');
    kernel.setStatus('idle');
    await flush();
    expect(conn.model.status).toBe('loading');
    kernel.hang = false;
    kernel.setConnectionStatus('connecting');
    kernel.setConnectionStatus('connected');
    await flush();
    expect(kernel.executed).toHaveLength(2);
    expect(kernel.lastComm.opened).toEqual([{ type: 'hello', version: 1, resume: true }]);
    kernel.answerLate(); // settle the abandoned attempt so its load timer does not outlive the test
    await flush();
    expect(kernel.comms).toHaveLength(2);
  });
});
