/**
 * The document side of `read_notebook`: the open notebook's cells, nbformat-shaped, reduced to fit
 * the comm's 256 kB panel -> kernel limit (the kernel summarises them further for the model; see
 * jupyter_agent/notebook_bridge.py). Text is cut head/tail, images are sent as their first base64
 * characters (enough for the PNG/JPEG header, so the kernel can name the size) and their byte count,
 * HTML and other rich data are dropped when text/plain is there.
 */

import type { JSONObject } from '@lumino/coreutils';
import { undoableStep } from './codeBlocks';

export interface INbCell {
  id?: string;
  cell_type: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: INbOutput[];
}

export type INbOutput = Record<string, unknown> & { output_type: string };

/** Room kept free under the comm limit for the envelope and JSON escaping. */
export const SNAPSHOT_BUDGET = 200 * 1024;
const IMAGE_HEAD = 1024;
const IMAGES = ['image/png', 'image/jpeg'];

function joined(value: unknown): string {
  if (Array.isArray(value)) {
    return value.map(v => (typeof v === 'string' ? v : JSON.stringify(v))).join('');
  }
  if (value === undefined || value === null) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `text` if short, else its head and tail around a marker saying how much was left out. */
export function headTail(text: string, limit: number): string {
  if (text.length <= limit) {
    return text;
  }
  const head = text.slice(0, Math.floor((limit * 2) / 3));
  const tail = text.slice(text.length - Math.floor(limit / 3));
  return `${head}\n… [${text.length - head.length - tail.length} characters elided] …\n${tail}`;
}

function reduceOutput(output: INbOutput, limit: number): INbOutput {
  if (output.output_type === 'stream') {
    return { output_type: 'stream', name: output.name, text: headTail(joined(output.text), limit) };
  }
  if (output.output_type === 'error') {
    const tb = Array.isArray(output.traceback) ? (output.traceback as unknown[]).map(String) : [];
    return { output_type: 'error', ename: output.ename, evalue: output.evalue, traceback: tb.slice(-40) };
  }
  const data = (output.data ?? {}) as Record<string, unknown>;
  const reduced: Record<string, unknown> = {};
  for (const mime of IMAGES) {
    if (mime in data) {
      const b64 = joined(data[mime]).replace(/\s/g, '');
      reduced[mime] = { head: b64.slice(0, IMAGE_HEAD), bytes: Math.floor((b64.length * 3) / 4) };
    }
  }
  if ('text/plain' in data) {
    reduced['text/plain'] = headTail(joined(data['text/plain']), limit);
  } else {
    for (const [mime, value] of Object.entries(data)) {
      if (!IMAGES.includes(mime)) {
        reduced[mime] = headTail(typeof value === 'string' ? value : JSON.stringify(value), limit);
        break; // one representation is enough for a summary
      }
    }
  }
  return { output_type: output.output_type, data: reduced };
}

/** The cells reduced with per-text `limit`; halved until the whole fits `budget` bytes. */
export function reduceCells(cells: INbCell[], budget: number = SNAPSHOT_BUDGET): JSONObject[] {
  let limit = 4000;
  for (;;) {
    const reduced = cells.map(cell => ({
      id: cell.id,
      cell_type: cell.cell_type,
      source: headTail(joined(cell.source), limit),
      execution_count: cell.execution_count ?? null,
      outputs: (cell.outputs ?? []).map(o => reduceOutput(o, limit))
    }));
    const size = new TextEncoder().encode(JSON.stringify(reduced)).length;
    if (size <= budget || limit <= 50) {
      return reduced as unknown as JSONObject[];
    }
    limit = Math.floor(limit / 2);
  }
}

// --- edits: one Undo step each, marked as the agent's ------------------------------------

/** The part of a NotebookPanel the bridge needs (a structural type keeps it testable). */
export interface INotebookLike {
  content: {
    model: { sharedModel: ISharedNotebookLike } | null;
    widgets: ReadonlyArray<{ model: { id: string }; node: HTMLElement }>;
  };
}

interface ISharedCellLike {
  id: string;
  setSource(source: string): void;
  getMetadata(key?: string): unknown;
  setMetadata(key: string, value: JSONObject): void;
  toJSON(): unknown;
}

interface ISharedNotebookLike {
  cells: ISharedCellLike[];
  transact(f: () => void, undoable?: boolean): void;
  insertCell(index: number, cell: { cell_type: string; source: string; metadata?: JSONObject }): ISharedCellLike;
  deleteCell(index: number): void;
}

export interface IBridgeAnswer {
  cells?: JSONObject[];
  result?: JSONObject;
  error?: string;
}

/** Metadata key stamped on the cells the agent inserted or edited. */
export const AGENT_METADATA = 'jupyter_agent';
/** Class of the cell widgets the agent wrote (the visible badge, style/base.css). */
export const AGENT_CELL_CLASS = 'jp-AgentCell';

/** Runs cell `index` of the notebook on the main shell and resolves when it is done. */
export type CellRunner = (index: number) => Promise<{ status: string; execution_count: number | null }>;

export class NotebookBridge {
  constructor(
    private _nb: INotebookLike,
    private _run?: CellRunner
  ) {}

  /** The document's cells, nbformat JSON (reduced by the caller). */
  snapshot(): INbCell[] {
    return (this._nb.content.model?.sharedModel.cells ?? []).map(cell => cell.toJSON() as INbCell);
  }

  /** Apply one `notebook_request` action; errors are answers, never exceptions. */
  async handle(action: string, args: Record<string, unknown>): Promise<IBridgeAnswer> {
    const shared = this._nb.content.model?.sharedModel;
    if (!shared) {
      return { error: 'the notebook is not loaded' };
    }
    try {
      switch (action) {
        case 'run':
          return { result: await this._runCell(shared, args) };
        case 'set_outputs':
          return { result: this._setOutputs(shared, args) };
        case 'read':
          return { cells: reduceCells(this.snapshot()) };
        case 'insert':
          return { result: this._insert(shared, args) };
        case 'edit':
          return { result: this._edit(shared, args) };
        case 'delete':
          return { result: this._delete(shared, args) };
      }
      return { error: `unknown action ${JSON.stringify(action)}` };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    } finally {
      requestAnimationFrame(() => this.markAgentCells());
    }
  }

  /** Put the badge class on every cell widget whose metadata says the agent wrote it. */
  markAgentCells(): void {
    const cells = this._nb.content.model?.sharedModel.cells ?? [];
    const byId = new Map(cells.map(c => [c.id, c]));
    for (const widget of this._nb.content.widgets) {
      const meta = byId.get(widget.model.id)?.getMetadata(AGENT_METADATA) as { turn_id?: string } | undefined;
      widget.node.classList.toggle(AGENT_CELL_CLASS, !!meta);
      if (meta) {
        widget.node.dataset.agentTurn = meta.turn_id ?? '';
      }
    }
  }

  private _index(shared: ISharedNotebookLike, ref: unknown): number {
    const key = String(ref);
    const byId = shared.cells.findIndex(c => c.id === key);
    if (byId >= 0) {
      return byId;
    }
    const n = Number(key);
    if (key.trim() !== '' && Number.isInteger(n)) {
      const i = n < 0 ? shared.cells.length + n : n;
      if (i >= 0 && i < shared.cells.length) {
        return i;
      }
    }
    throw new Error(`no cell ${JSON.stringify(key)} (the notebook has ${shared.cells.length} cells)`);
  }

  /** One undoable step: stopCapturing on both sides keeps yjs from merging it with a neighbour. */
  private _step(shared: ISharedNotebookLike, f: () => void): void {
    undoableStep(shared, f);
  }

  private _mark(args: Record<string, unknown>): JSONObject {
    return { turn_id: typeof args.turn_id === 'string' ? args.turn_id : '' };
  }

  private _insert(shared: ISharedNotebookLike, args: Record<string, unknown>): JSONObject {
    const cellType = args.cell_type === 'markdown' ? 'markdown' : 'code';
    let index = shared.cells.length;
    if (args.before !== undefined && args.before !== null) {
      index = this._index(shared, args.before);
    } else if (args.after !== undefined && args.after !== null) {
      index = this._index(shared, args.after) + 1;
    }
    let id = '';
    this._step(shared, () => {
      const cell = shared.insertCell(index, {
        cell_type: cellType,
        source: typeof args.source === 'string' ? args.source : '',
        metadata: { [AGENT_METADATA]: this._mark(args) }
      });
      id = cell.id;
    });
    return { id, index };
  }

  private _edit(shared: ISharedNotebookLike, args: Record<string, unknown>): JSONObject {
    const index = this._index(shared, args.cell);
    const cell = shared.cells[index];
    this._step(shared, () => {
      cell.setSource(typeof args.source === 'string' ? args.source : '');
      cell.setMetadata(AGENT_METADATA, this._mark(args));
    });
    return { id: cell.id, index };
  }

  /** Run a code cell as the user would (main shell; outputs, count and Undo as usual). */
  private async _runCell(shared: ISharedNotebookLike, args: Record<string, unknown>): Promise<JSONObject> {
    const index = this._index(shared, args.cell);
    const cell = shared.cells[index];
    if ((cell.toJSON() as INbCell).cell_type !== 'code') {
      throw new Error(`cell ${index} is not a code cell`);
    }
    if (!this._run) {
      throw new Error('this notebook cannot run cells');
    }
    const reply = await this._run(index);
    const json = cell.toJSON() as INbCell;
    return {
      id: cell.id,
      index,
      status: reply.status,
      execution_count: json.execution_count ?? null,
      outputs: reduceCells([json])[0].outputs as JSONObject[],
      images: await modelImages(json.outputs ?? [])
    };
  }

  /** Outputs computed in the kernel (the fallback while a `%%agent` cell holds the shell): not an Undo step. */
  private _setOutputs(shared: ISharedNotebookLike, args: Record<string, unknown>): JSONObject {
    const index = this._index(shared, args.cell);
    const cell = shared.cells[index] as unknown as { setOutputs?: (o: unknown[]) => void; id: string };
    if (!cell.setOutputs) {
      throw new Error(`cell ${index} is not a code cell`);
    }
    const outputs = Array.isArray(args.outputs) ? (args.outputs as unknown[]) : [];
    shared.transact(() => cell.setOutputs?.(outputs), false);
    return { id: cell.id, index };
  }

  private _delete(shared: ISharedNotebookLike, args: Record<string, unknown>): JSONObject {
    const index = this._index(shared, args.cell);
    const id = shared.cells[index].id;
    this._step(shared, () => shared.deleteCell(index));
    return { id, index };
  }
}

// --- images for the model (input_image parts) -------------------------------------------

/** Largest side of an image sent to the model, and the base64 budget of all images of one run. */
export const IMAGE_MAX_SIDE = 1024;
export const IMAGES_BUDGET = 180 * 1024;

/** The run's PNG/JPEG outputs, downscaled to IMAGE_MAX_SIDE, within IMAGES_BUDGET (comm limit). */
export async function modelImages(outputs: INbOutput[]): Promise<JSONObject[]> {
  const images: JSONObject[] = [];
  let used = 0;
  for (const output of outputs) {
    const data = (output.data ?? {}) as Record<string, unknown>;
    for (const mime of IMAGES) {
      if (!(mime in data)) {
        continue;
      }
      let b64 = joined(data[mime]).replace(/\s/g, '');
      let type = mime;
      try {
        const scaled = await downscale(mime, b64);
        if (scaled) {
          [type, b64] = scaled;
        }
      } catch {
        // not decodable here: send as is if it fits
      }
      if (used + b64.length <= IMAGES_BUDGET) {
        images.push({ mime: type, data: b64 });
        used += b64.length;
      }
    }
  }
  return images;
}

async function downscale(mime: string, b64: string): Promise<[string, string] | null> {
  if (typeof createImageBitmap === 'undefined' || typeof OffscreenCanvas === 'undefined') {
    return null;
  }
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], { type: mime }));
  const scale = Math.min(1, IMAGE_MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  if (scale === 1 && b64.length <= IMAGES_BUDGET / 2) {
    return null;
  }
  const canvas = new OffscreenCanvas(Math.round(bitmap.width * scale), Math.round(bitmap.height * scale));
  canvas.getContext('2d')?.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.8 });
  const buf = new Uint8Array(await blob.arrayBuffer());
  let bin = '';
  for (const b of buf) {
    bin += String.fromCharCode(b);
  }
  return ['image/jpeg', btoa(bin)];
}
