/**
 * The document side of `read_notebook`: the open notebook's cells, nbformat-shaped, reduced to fit
 * the comm's 256 kB panel -> kernel limit (the kernel summarises them further for the model; see
 * jupyter_agent/notebook_bridge.py). Text is cut head/tail, images are sent as their first base64
 * characters (enough for the PNG/JPEG header, so the kernel can name the size) and their byte count,
 * HTML and other rich data are dropped when text/plain is there.
 */

import type { JSONObject } from '@lumino/coreutils';

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
