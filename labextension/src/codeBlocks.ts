/**
 * Pure helpers behind the panel's Markdown view and its code-block toolbar: no DOM and no
 * JupyterLab imports, so jest covers them (src/__tests__/codeBlocks.spec.ts).
 */

/** Least time between two Markdown renderings of a streaming entry (ms). */
export const STREAM_RENDER_INTERVAL = 150;

/**
 * How long to wait before rendering an entry's Markdown again: at once when it is done (the
 * final rendering is never delayed) or when the last rendering is `interval` ms old, else the rest
 * of the interval.
 */
export function renderDelay(now: number, lastRender: number, done: boolean, interval = STREAM_RENDER_INTERVAL): number {
  if (done) {
    return 0;
  }
  return Math.max(0, lastRender + interval - now);
}

/** The language of a rendered fenced block from its `<code>` class list ("language-python" -> "python"). */
export function codeLanguage(className: string): string {
  for (const name of className.split(/\s+/)) {
    if (name.startsWith('language-') && name.length > 'language-'.length) {
      return name.slice('language-'.length).toLowerCase();
    }
  }
  return '';
}

/** The code of a block as it goes into a cell: without the one newline that ends the fence's body. */
export function blockSource(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

const ALIASES: Record<string, string> = {
  py: 'python',
  python3: 'python',
  ipython: 'python',
  ipython3: 'python',
  js: 'javascript',
  ts: 'typescript',
  rb: 'ruby',
  sh: 'bash'
};

function canonical(language: string): string {
  const lower = language.trim().toLowerCase();
  return ALIASES[lower] ?? lower;
}

/**
 * Whether a block may be run in a kernel of `kernelLanguage`: unlabelled blocks and blocks in the
 * kernel's language (aliases such as py/ipython3 included). Unknown kernel language: only unlabelled
 * or Python blocks, the kernels jupyter_agent runs in.
 */
export function runnableIn(blockLanguage: string, kernelLanguage: string): boolean {
  const block = canonical(blockLanguage);
  if (block === '') {
    return true;
  }
  const kernel = canonical(kernelLanguage) || 'python';
  return block === kernel;
}

/** The part of a notebook's shared model that inserting a cell needs (structural, so jest can fake it). */
export interface ISharedCellsLike {
  cells: ReadonlyArray<unknown>;
  transact(f: () => void, undoable?: boolean): void;
  insertCell(index: number, cell: { cell_type: string; source: string }): unknown;
}

/**
 * Insert a code cell holding `source` just below the active cell (at the end when there is none)
 * as ONE Undo step of the document model: the undo manager stops capturing on both sides so yjs
 * does not merge the insertion with the user's neighbouring edits. Returns the new cell's index.
 * The cell carries no agent metadata: the user clicked, so it is the user's cell.
 */
export function insertCodeBelow(shared: ISharedCellsLike, activeIndex: number, source: string): number {
  const count = shared.cells.length;
  const index = activeIndex >= 0 && activeIndex < count ? activeIndex + 1 : count;
  undoableStep(shared, () => {
    shared.insertCell(index, { cell_type: 'code', source });
  });
  return index;
}

/** Run `f` in one transaction that is its own Undo step (yjs would otherwise merge close edits). */
export function undoableStep(shared: { transact(f: () => void, undoable?: boolean): void }, f: () => void): void {
  const undo = (shared as unknown as { undoManager?: { stopCapturing(): void } }).undoManager;
  undo?.stopCapturing();
  shared.transact(f);
  undo?.stopCapturing();
}
