/**
 * One assistant message of the panel as Markdown: rendered by JupyterLab's rendermime (the
 * application's Markdown parser, so fenced code is highlighted as in Markdown cells), always
 * sanitised (the model is untrusted: raw HTML goes through the sanitizer, scripts never run), and
 * with a toolbar on every code block: Copy, Insert below, Run.
 *
 * Streaming: the first delta shows at once as plain text; after that the Markdown is rendered at
 * most every STREAM_RENDER_INTERVAL ms (throttled, latest text wins), and the final text is
 * rendered as soon as the entry is done. Without rendermime the view is plain text.
 */

import { Clipboard } from '@jupyterlab/apputils';
import { IRenderMimeRegistry, renderMarkdown } from '@jupyterlab/rendermime';
import { LabIcon, addBelowIcon, copyIcon, runIcon } from '@jupyterlab/ui-components';
import { blockSource, codeLanguage, renderDelay, runnableIn } from './codeBlocks';

/** What the code-block buttons do in the panel's notebook (index.ts wires it). */
export interface ICodeActions {
  /** The kernel language of the panel's notebook ("" when unknown). */
  language(): string;
  /** Insert `code` as a new code cell below the active cell; run it when `run`. */
  insert(code: string, run: boolean): Promise<void>;
}

const COPIED_MS = 1500;

export class MarkdownView {
  /** The entry's text node: `jp-AgentPanel-text`, `jp-mod-streaming` until the entry is done. */
  readonly node: HTMLElement;
  private _text = '';
  private _done = false;
  private _shown: { text: string; done: boolean } | null = null;
  private _lastRender = 0;
  private _timer = 0;
  private _busy = false;
  private _disposed = false;
  private _renders = 0;

  constructor(
    private _rendermime: IRenderMimeRegistry | null,
    private _actions: () => ICodeActions | null
  ) {
    this.node = document.createElement('div');
    this.node.className = 'jp-AgentPanel-text jp-AgentPanel-markdownHost';
  }

  /** The latest text of the entry; cheap to call on every delta. */
  update(text: string, done: boolean): void {
    this._text = text;
    this._done = done;
    this.node.classList.toggle('jp-mod-streaming', !done);
    if (!this._rendermime) {
      this.node.textContent = text;
      return;
    }
    if (!this._shown) {
      // Nothing rendered yet: show the words now, the Markdown follows.
      this.node.textContent = text;
    }
    this._schedule();
  }

  dispose(): void {
    this._disposed = true;
    if (this._timer) {
      window.clearTimeout(this._timer);
      this._timer = 0;
    }
  }

  private _schedule(): void {
    if (this._busy || this._disposed) {
      return; // the running render re-checks when it ends
    }
    const delay = renderDelay(performance.now(), this._lastRender, this._done);
    if (delay > 0) {
      if (!this._timer) {
        this._timer = window.setTimeout(() => {
          this._timer = 0;
          this._schedule();
        }, delay);
      }
      return;
    }
    if (this._timer) {
      window.clearTimeout(this._timer);
      this._timer = 0;
    }
    if (this._shown && this._shown.text === this._text && this._shown.done === this._done) {
      return;
    }
    void this._render();
  }

  private async _render(): Promise<void> {
    const rendermime = this._rendermime;
    if (!rendermime) {
      return;
    }
    this._busy = true;
    const text = this._text;
    const done = this._done;
    const host = document.createElement('div');
    host.className = 'jp-RenderedHTMLCommon jp-RenderedMarkdown jp-AgentPanel-markdown';
    try {
      await renderMarkdown({
        host,
        source: text,
        trusted: false,
        sanitizer: rendermime.sanitizer,
        resolver: rendermime.resolver,
        linkHandler: rendermime.linkHandler,
        latexTypesetter: rendermime.latexTypesetter,
        markdownParser: rendermime.markdownParser,
        shouldTypeset: false
      });
      this._addToolbars(host, done);
    } catch (err) {
      console.warn('jupyter-agent: Markdown rendering failed, showing text', err);
      host.textContent = text;
    }
    this._lastRender = performance.now();
    this._busy = false;
    if (this._disposed) {
      return;
    }
    const box = this.node.closest('.jp-AgentPanel-messages');
    const nearBottom = box ? box.scrollHeight - box.scrollTop - box.clientHeight < 40 : false;
    this.node.replaceChildren(host);
    this.node.dataset.rendered = done ? 'final' : 'streaming';
    this._renders += 1;
    this.node.dataset.renders = String(this._renders);
    this._shown = { text, done };
    if (done && rendermime.latexTypesetter) {
      void Promise.resolve(rendermime.latexTypesetter.typeset(host)).catch(console.warn);
    }
    if (box && nearBottom) {
      box.scrollTop = box.scrollHeight;
    }
    this._schedule();
  }

  private _addToolbars(host: HTMLElement, done: boolean): void {
    const actions = this._actions();
    for (const pre of Array.from(host.querySelectorAll('pre'))) {
      const code = pre.querySelector('code');
      const language = codeLanguage(code?.className ?? '');
      const source = (): string => blockSource((code ?? pre).textContent ?? '');
      const block = document.createElement('div');
      block.className = 'jp-AgentPanel-codeBlock';
      const bar = document.createElement('div');
      bar.className = 'jp-AgentPanel-codeToolbar';
      bar.setAttribute('role', 'group');
      bar.setAttribute('aria-label', language ? `${language} code block` : 'Code block');
      const label = document.createElement('span');
      label.className = 'jp-AgentPanel-codeLanguage';
      label.textContent = language;
      bar.append(label);

      const copy = button('jp-AgentPanel-codeCopy', copyIcon, 'Copy', 'Copy the code to the clipboard');
      copy.addEventListener('click', () => void copyText(source()).then(() => flashCopied(copy)));
      bar.append(copy);

      if (actions) {
        const waiting = done ? '' : ' (available when the answer is complete)';
        const insert = button(
          'jp-AgentPanel-codeInsert',
          addBelowIcon,
          'Insert below',
          `Insert the code as a new cell below the active cell${waiting}`
        );
        insert.disabled = !done;
        insert.addEventListener('click', () => act(actions.insert(source(), false)));
        bar.append(insert);
        if (runnableIn(language, actions.language())) {
          const run = button(
            'jp-AgentPanel-codeRun',
            runIcon,
            'Run',
            `Insert the code below the active cell and run it${waiting}`
          );
          run.disabled = !done;
          run.addEventListener('click', () => act(actions.insert(source(), true)));
          bar.append(run);
        }
      }
      pre.replaceWith(block);
      block.append(bar, pre);
    }
  }
}

function button(className: string, icon: LabIcon, text: string, title: string): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `jp-AgentPanel-codeButton ${className}`;
  b.title = title;
  b.setAttribute('aria-label', title);
  b.append(
    icon.element({ tag: 'span', className: 'jp-AgentPanel-codeIcon', height: '14px', width: '14px' }),
    Object.assign(document.createElement('span'), { className: 'jp-AgentPanel-codeButtonText', textContent: text })
  );
  return b;
}

/** The async Clipboard API when the page may use it, else JupyterLab's copy-event fallback. */
async function copyText(text: string): Promise<void> {
  try {
    if (!navigator.clipboard?.writeText) {
      throw new Error('no async clipboard');
    }
    await navigator.clipboard.writeText(text);
  } catch {
    Clipboard.copyToSystem(text);
  }
}

/** A code action failed (no notebook, kernel gone): say so in the console, never as a page error. */
function act(done: Promise<void>): void {
  done.catch(err => console.warn('jupyter-agent: code block action failed', err));
}

/** "Copied" for a moment, on screen and for screen readers (the label is what they read). */
function flashCopied(b: HTMLButtonElement): void {
  const text = b.querySelector('.jp-AgentPanel-codeButtonText');
  b.classList.add('jp-mod-copied');
  b.setAttribute('aria-label', 'Copied to the clipboard');
  if (text) {
    text.textContent = 'Copied';
  }
  window.setTimeout(() => {
    b.classList.remove('jp-mod-copied');
    b.setAttribute('aria-label', b.title);
    if (text) {
      text.textContent = 'Copy';
    }
  }, COPIED_MS);
}
