/**
 * One notebook's link to its kernel's agent: opens the `jupyter_agent` comm, offers to load the
 * extension when the target is missing, reconnects after a kernel restart or kernel change.
 *
 * Restarts come two ways: a bare `kernel.restart()` only changes the kernel's status, while the
 * Kernel menu and toolbar of JupyterLab and Notebook 7 (`SessionContext.restartKernel`) also emit
 * `kernelChanged` with the same connection as old and new value; that one is not a kernel change
 * and is ignored.
 * A kernel that stops answering (seen after restarts through Kernel Gateway) must not leave the
 * panel `loading` for ever: loading times out, and is retried when the websocket reconnects
 * (Kernel → Reconnect to Kernel).
 */

import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { ChatModel } from './model';
import { IBridgeAnswer, NotebookBridge } from './notebookBridge';
import { COMM_TARGET, Decision, PROTOCOL_VERSION, PanelMessage, checkPanelMessage } from './protocol';

export interface IConnectionOptions {
  /** Load the extension again in a restarted kernel that had it. */
  reloadAfterRestart: () => boolean;
  /**
   * The notebook's path as the server knows it, sent in `hello`: the kernel keys saved
   * conversations with it when it cannot see the notebook itself (a remote kernel).
   */
  notebookPath?: () => string;
  /**
   * The notebook document for the kernel's notebook tools; with it the `hello` offers the `notebook`
   * feature and `notebook_request`s (read, insert, edit, delete) are answered (notebookBridge.ts).
   */
  bridge?: NotebookBridge;
  /** How long the silent `%load_ext` may go unanswered (default 30 s). */
  loadTimeoutMs?: number;
}

const LOAD_CODE = '%load_ext jupyter_agent';
export const DEFAULT_LOAD_TIMEOUT_MS = 30000;

type KernelChange = { oldValue: Kernel.IKernelConnection | null; newValue: Kernel.IKernelConnection | null };

export class AgentConnection {
  readonly model = new ChatModel();
  private _comm: Kernel.IComm | null = null;
  private _kernel: Kernel.IKernelConnection | null = null;
  private _wasConnected = false;
  private _restarting = false;
  private _gotReply = false;
  private _seq = 0;
  /** A cell mentioning jupyter_agent ran while the extension was not loaded: probe at idle. */
  private _probe = false;
  private _disposed = false;
  /** Bumped by every load attempt: a late reply to an abandoned attempt is ignored. */
  private _loadAttempt = 0;
  /** A load that timed out or was cut off: retried (with this `resume`) when the websocket is back. */
  private _retryLoad: { resume: boolean } | null = null;
  /** The `resume` of the load in progress (a reconnect retries it with the same). */
  private _loadResume = false;
  /** The websocket dropped since the last attach: its return may need a retry. */
  private _lostConnection = false;

  constructor(
    readonly sessionContext: ISessionContext,
    private _options: IConnectionOptions
  ) {
    sessionContext.kernelChanged.connect(this._onKernelChanged);
    this.model.setStatus('connecting');
    void sessionContext.ready.then(() => {
      if (!this._disposed) {
        this._attach(sessionContext.session?.kernel ?? null, false);
      }
    });
  }

  get kernel(): Kernel.IKernelConnection | null {
    return this._kernel;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.sessionContext.kernelChanged.disconnect(this._onKernelChanged);
    this._detach();
  }

  // -- panel actions ------------------------------------------------------------------------

  send(text: string): boolean {
    this._seq += 1;
    const id = `${Date.now().toString(36)}-${this._seq}`;
    const msg: PanelMessage = { type: 'send', id, text };
    const error = checkPanelMessage(msg);
    if (error) {
      this.model.addLocalError(error);
      return false;
    }
    if (!this._post(msg)) {
      return false;
    }
    this.model.addPending(id, text);
    return true;
  }

  stop(): void {
    this._post({ type: 'stop' });
  }

  approve(callId: string, decision: Decision): void {
    this._post({ type: 'approval', call_id: callId, decision });
  }

  /** Ask the kernel for a turn that explains the error shown by cell `cellId` and proposes the fix. */
  fix(cellId: string): boolean {
    return this._post({ type: 'fix', cell_id: cellId });
  }

  requestHistory(): void {
    this._post({ type: 'history' });
  }

  /**
   * Run `%load_ext jupyter_agent` silently in the kernel, then open the comm. With `resume`
   * (after a kernel restart) the kernel continues the notebook's saved conversation.
   */
  async loadExtension(resume = false): Promise<void> {
    const kernel = this._kernel;
    if (!kernel || this._disposed) {
      return;
    }
    const attempt = ++this._loadAttempt;
    this._retryLoad = null;
    this._loadResume = resume;
    this.model.setStatus('loading');
    const timeoutMs = this._options.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let future: Kernel.IShellFuture<KernelMessage.IExecuteRequestMsg, KernelMessage.IExecuteReplyMsg> | null = null;
    try {
      const request = kernel.requestExecute({ code: LOAD_CODE, silent: true, store_history: false });
      future = request;
      let failure = '';
      request.onIOPub = msg => {
        if (msg.header.msg_type === 'error') {
          const content = msg.content as { ename?: string; evalue?: string };
          failure = `${content.ename}: ${content.evalue}`;
        }
      };
      const timedOut = new Promise<'timeout'>(resolve => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const reply = await Promise.race([request.done, timedOut]);
      if (attempt !== this._loadAttempt || kernel !== this._kernel || this._disposed) {
        return; // superseded (a retry, a kernel change)
      }
      if (reply === 'timeout') {
        this._retryLoad = { resume };
        // A slow kernel that answers after all: connect then.
        void request.done.then(
          late => {
            if (attempt === this._loadAttempt && kernel === this._kernel && late.content.status === 'ok' && !failure) {
              this._retryLoad = null;
              this._open(false, resume);
            }
          },
          () => undefined
        );
        this.model.setStatus(
          'not-loaded',
          `Loading jupyter_agent timed out: the kernel did not answer in ${Math.round(timeoutMs / 1000)} s. ` +
            'Retrying when the kernel reconnects (Kernel → Reconnect to Kernel), or click Load.'
        );
        return;
      }
      if (reply.content.status !== 'ok' || failure) {
        this.model.setStatus('not-loaded', failure || 'Loading jupyter_agent failed in this kernel.');
        return;
      }
    } catch (err) {
      if (attempt === this._loadAttempt && !this._disposed) {
        this._retryLoad = { resume };
        this.model.setStatus('not-loaded', `Loading jupyter_agent failed: ${errorText(err)}`);
      }
      return;
    } finally {
      clearTimeout(timer);
      if (future && attempt !== this._loadAttempt) {
        future.dispose();
      }
    }
    this._open(false, resume);
  }

  /** Reconnect now (e.g. the user clicked Retry). */
  reconnect(): void {
    this._open();
  }

  // -- kernel lifecycle -----------------------------------------------------------------------

  private _onKernelChanged = (_: ISessionContext, change: KernelChange): void => {
    if (change.newValue !== null && change.newValue === change.oldValue && change.newValue === this._kernel) {
      // SessionContext.restartKernel (Kernel menu, toolbar) re-emits the same connection after a
      // restart: the status handler is already reloading; re-attaching would drop that.
      return;
    }
    this._attach(change.newValue, false);
  };

  private _attach(kernel: Kernel.IKernelConnection | null, autoload: boolean): void {
    this._detach();
    this._kernel = kernel;
    this._wasConnected = false;
    this._restarting = false;
    this._retryLoad = null;
    this._lostConnection = false;
    this._loadAttempt += 1;
    if (!kernel) {
      this.model.setStatus('no-kernel');
      return;
    }
    kernel.statusChanged.connect(this._onStatus);
    kernel.iopubMessage.connect(this._onIOPub);
    kernel.connectionStatusChanged.connect(this._onConnectionStatus);
    if (kernel.status === 'idle' || kernel.status === 'busy') {
      if (autoload) {
        void this.loadExtension();
      } else {
        this._open();
      }
    } else {
      this._restarting = true;
      this.model.setStatus('connecting');
    }
  }

  private _detach(): void {
    this._closeComm();
    if (this._kernel) {
      this._kernel.statusChanged.disconnect(this._onStatus);
      this._kernel.iopubMessage.disconnect(this._onIOPub);
      this._kernel.connectionStatusChanged.disconnect(this._onConnectionStatus);
    }
    this._kernel = null;
  }

  private _onIOPub = (_: Kernel.IKernelConnection, msg: KernelMessage.IIOPubMessage): void => {
    if (msg.header.msg_type !== 'execute_input' || this.model.status !== 'not-loaded') {
      return;
    }
    const code = (msg.content as { code?: string }).code ?? '';
    if (code.includes('jupyter_agent')) {
      this._probe = true;
    }
  };

  private _onStatus = (_: Kernel.IKernelConnection, status: Kernel.Status): void => {
    if (status === 'idle' && this._probe && !this._restarting) {
      // The user loaded the extension from a cell: connect without a click.
      this._probe = false;
      this._open(true);
      return;
    }
    if (status === 'restarting' || status === 'autorestarting' || status === 'starting') {
      if (!this._restarting) {
        this._restarting = true;
        // The kernel dropped its comms; ours is disposed by the kernel connection.
        this._comm = null;
        this.model.setStatus('restarting');
      }
      return;
    }
    if (status === 'dead') {
      this._comm = null;
      this.model.setStatus('disconnected', 'The kernel is dead.');
      return;
    }
    if (this._restarting && status === 'idle') {
      this._restarting = false;
      this._afterRestart();
    }
  };

  /** The restarted kernel is up: reload the extension (and resume) or just re-open the comm. */
  private _afterRestart(): void {
    if (this._wasConnected && this._options.reloadAfterRestart()) {
      void this.loadExtension(true);
    } else {
      this._open();
    }
  }

  /**
   * The websocket to the kernel came back (Kernel → Reconnect to Kernel, a network blip). A
   * kernel that hung after a restart answers again only then: finish what was waiting on it.
   */
  private _onConnectionStatus = (_: Kernel.IKernelConnection, status: Kernel.ConnectionStatus): void => {
    if (status !== 'connected') {
      this._lostConnection = true;
      return;
    }
    if (!this._lostConnection || this._disposed) {
      return;
    }
    this._lostConnection = false;
    if (this._retryLoad || this.model.status === 'loading') {
      void this.loadExtension(this._retryLoad?.resume ?? this._loadResume);
    } else if (this._restarting) {
      this._restarting = false;
      this._afterRestart();
    } else if (this.model.status === 'connecting' && !this._gotReply) {
      this._open(); // the hello went to a kernel that never answered
    }
  };

  // -- the comm -----------------------------------------------------------------------------

  private _open(quiet = false, resume = false): void {
    const kernel = this._kernel;
    if (!kernel || this._disposed) {
      return;
    }
    this._closeComm();
    let comm: Kernel.IComm;
    try {
      comm = kernel.createComm(COMM_TARGET);
    } catch (err) {
      this.model.setStatus('disconnected', `Cannot open a comm: ${errorText(err)}`);
      return;
    }
    this._comm = comm;
    this._gotReply = false;
    if (!quiet) {
      this.model.setStatus('connecting');
    }
    comm.onMsg = msg => {
      if (comm !== this._comm) {
        return;
      }
      const data = msg.content.data as { type?: unknown; id?: unknown } | null;
      if (data && data.type === 'notebook_request' && typeof data.id === 'string') {
        const req = data as { id: string; action?: unknown; args?: unknown };
        const args = req.args && typeof req.args === 'object' ? (req.args as Record<string, unknown>) : {};
        this._answerNotebook(comm, req.id, typeof req.action === 'string' ? req.action : 'read', args);
        return;
      }
      const first = !this._gotReply;
      this._gotReply = true;
      this.model.receive(msg.content.data);
      if (first && this.model.status === 'connected') {
        this._wasConnected = true;
      }
    };
    comm.onClose = () => {
      if (comm !== this._comm) {
        return;
      }
      this._comm = null;
      if (!this._gotReply) {
        // ipykernel closes a comm whose target is not registered: the extension is not loaded.
        this.model.setStatus('not-loaded');
      } else {
        this.model.setStatus('disconnected', 'The kernel closed the connection.');
      }
    };
    try {
      const hello: PanelMessage = { type: 'hello', version: PROTOCOL_VERSION };
      if (resume) {
        hello.resume = true;
      }
      const notebook = this._options.notebookPath?.() ?? '';
      if (notebook) {
        hello.notebook = notebook;
      }
      if (this._options.bridge) {
        hello.features = ['notebook'];
      }
      comm.open(hello);
    } catch (err) {
      this._comm = null;
      this.model.setStatus('disconnected', `Cannot open a comm: ${errorText(err)}`);
    }
  }

  private _closeComm(): void {
    const comm = this._comm;
    this._comm = null;
    if (comm && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        // the kernel is gone; nothing to close
      }
    }
  }

  /** Answer a `notebook_request`: the document (read), or the outcome of one edit or run. */
  private _answerNotebook(comm: Kernel.IComm, id: string, action: string, args: Record<string, unknown>): void {
    const bridge = this._options.bridge;
    const pending = bridge
      ? bridge.handle(action, args)
      : Promise.resolve<IBridgeAnswer>({ error: 'this panel has no notebook' });
    void pending.then(answer => {
      const reply: PanelMessage = { type: 'notebook', id, cells: answer.cells ?? [] };
      if (answer.result) {
        reply.result = answer.result;
      }
      if (answer.error) {
        reply.error = answer.error;
      }
      if (!comm.isDisposed) {
        comm.send(reply);
      }
    });
  }

  private _post(msg: PanelMessage): boolean {
    const comm = this._comm;
    if (!comm || comm.isDisposed || this.model.status !== 'connected') {
      this.model.addLocalError('Not connected to the agent in this kernel.');
      return false;
    }
    comm.send(msg);
    return true;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
