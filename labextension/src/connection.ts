/**
 * One notebook's link to its kernel's agent: opens the `jupyter_agent` comm, offers to load the
 * extension when the target is missing, reconnects after a kernel restart or kernel change.
 */

import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { ChatModel } from './model';
import { COMM_TARGET, Decision, PROTOCOL_VERSION, PanelMessage, checkPanelMessage } from './protocol';

export interface IConnectionOptions {
  /** Load the extension again in a restarted kernel that had it. */
  reloadAfterRestart: () => boolean;
}

const LOAD_CODE = '%load_ext jupyter_agent';

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

  requestHistory(): void {
    this._post({ type: 'history' });
  }

  /**
   * Run `%load_ext jupyter_agent` silently in the kernel, then open the comm. With `resume`
   * (after a kernel restart) the kernel continues the notebook's saved conversation.
   */
  async loadExtension(resume = false): Promise<void> {
    const kernel = this._kernel;
    if (!kernel) {
      return;
    }
    this.model.setStatus('loading');
    try {
      const future = kernel.requestExecute({ code: LOAD_CODE, silent: true, store_history: false });
      let failure = '';
      future.onIOPub = msg => {
        if (msg.header.msg_type === 'error') {
          const content = msg.content as { ename?: string; evalue?: string };
          failure = `${content.ename}: ${content.evalue}`;
        }
      };
      const reply = await future.done;
      if (reply.content.status !== 'ok' || failure) {
        this.model.setStatus('not-loaded', failure || 'Loading jupyter_agent failed in this kernel.');
        return;
      }
    } catch (err) {
      this.model.setStatus('not-loaded', `Loading jupyter_agent failed: ${errorText(err)}`);
      return;
    }
    this._open(false, resume);
  }

  /** Reconnect now (e.g. the user clicked Retry). */
  reconnect(): void {
    this._open();
  }

  // -- kernel lifecycle -----------------------------------------------------------------------

  private _onKernelChanged = (_: ISessionContext, change: { newValue: Kernel.IKernelConnection | null }): void => {
    this._attach(change.newValue, false);
  };

  private _attach(kernel: Kernel.IKernelConnection | null, autoload: boolean): void {
    this._detach();
    this._kernel = kernel;
    this._wasConnected = false;
    if (!kernel) {
      this.model.setStatus('no-kernel');
      return;
    }
    kernel.statusChanged.connect(this._onStatus);
    kernel.iopubMessage.connect(this._onIOPub);
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
      if (this._wasConnected && this._options.reloadAfterRestart()) {
        void this.loadExtension(true);
      } else {
        this._open();
      }
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
      const hello: PanelMessage = resume
        ? { type: 'hello', version: PROTOCOL_VERSION, resume: true }
        : { type: 'hello', version: PROTOCOL_VERSION };
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
