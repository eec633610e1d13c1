/**
 * Approval previews: what a cell tool's approval card shows (the code it runs, or the unified diff
 * of the change it makes), split into lines the panel colours. Pure: no DOM, tested by jest.
 */

export type DiffLineKind = 'add' | 'del' | 'hunk' | 'file' | 'context';

export interface DiffLine {
  kind: DiffLineKind;
  text: string;
}

/** The lines of a unified diff (`difflib.unified_diff` output), each with what it is. */
export function diffLines(diff: string): DiffLine[] {
  if (!diff) {
    return [];
  }
  return diff.split('\n').map(text => ({ kind: lineKind(text), text }));
}

function lineKind(line: string): DiffLineKind {
  if (line.startsWith('+++') || line.startsWith('---')) {
    return 'file';
  }
  if (line.startsWith('@@')) {
    return 'hunk';
  }
  if (line.startsWith('+')) {
    return 'add';
  }
  if (line.startsWith('-')) {
    return 'del';
  }
  return 'context';
}

/** The card's one-line summary of a call: its name and the arguments besides the previewed source. */
export function callSummary(name: string, args: string, hasPreview: boolean): string {
  if (!hasPreview) {
    return `${name}(${args})`;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(args || '{}');
  } catch {
    return `${name}(${args})`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return `${name}(${args})`;
  }
  const rest = Object.entries(parsed as Record<string, unknown>)
    .filter(([key, value]) => key !== 'source' && value !== null && value !== undefined)
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`);
  return `${name}(${rest.join(', ')})`;
}
