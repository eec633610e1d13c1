import {
  STREAM_RENDER_INTERVAL,
  blockSource,
  codeLanguage,
  insertCodeBelow,
  renderDelay,
  runnableIn,
  undoableStep
} from '../codeBlocks';

describe('renderDelay', () => {
  it('renders at once the first time and when the entry is done', () => {
    expect(renderDelay(1000, 0, false)).toBe(0);
    expect(renderDelay(1000, 990, true)).toBe(0);
  });

  it('waits for the rest of the interval while streaming', () => {
    expect(renderDelay(1000, 950, false)).toBe(STREAM_RENDER_INTERVAL - 50);
    expect(renderDelay(1000, 1000 - STREAM_RENDER_INTERVAL, false)).toBe(0);
    expect(renderDelay(1000, 900, false, 40)).toBe(0);
  });
});

describe('codeLanguage', () => {
  it('reads the language class the Markdown parser puts on <code>', () => {
    expect(codeLanguage('language-python')).toBe('python');
    expect(codeLanguage('hljs language-TypeScript other')).toBe('typescript');
  });

  it('is empty for unlabelled blocks', () => {
    expect(codeLanguage('')).toBe('');
    expect(codeLanguage('language-')).toBe('');
    expect(codeLanguage('foo bar')).toBe('');
  });
});

describe('blockSource', () => {
  it('drops the one newline that ends a fence body and keeps the rest', () => {
    expect(blockSource('print(6*7)\n')).toBe('print(6*7)');
    expect(blockSource('a\n\n')).toBe('a\n');
    expect(blockSource('x = 1')).toBe('x = 1');
  });
});

describe('runnableIn', () => {
  it('runs unlabelled blocks and blocks in the kernel language, aliases included', () => {
    expect(runnableIn('', 'python')).toBe(true);
    expect(runnableIn('python', 'python')).toBe(true);
    expect(runnableIn('py', 'python')).toBe(true);
    expect(runnableIn('ipython3', 'python')).toBe(true);
    expect(runnableIn('R', 'r')).toBe(true);
  });

  it('does not run other languages', () => {
    expect(runnableIn('bash', 'python')).toBe(false);
    expect(runnableIn('json', 'python')).toBe(false);
    expect(runnableIn('python', 'r')).toBe(false);
  });

  it('assumes Python when the kernel language is unknown', () => {
    expect(runnableIn('python', '')).toBe(true);
    expect(runnableIn('javascript', '')).toBe(false);
  });
});

class FakeShared {
  cells: { cell_type: string; source: string }[] = [{ cell_type: 'code', source: 'a' }];
  log: string[] = [];
  undoManager = { stopCapturing: () => this.log.push('stop') };
  transact(f: () => void): void {
    this.log.push('begin');
    f();
    this.log.push('end');
  }
  insertCell(index: number, cell: { cell_type: string; source: string }): unknown {
    this.cells.splice(index, 0, { ...cell });
    return cell;
  }
}

describe('insertCodeBelow', () => {
  it('inserts a plain code cell below the active cell as one undo step', () => {
    const shared = new FakeShared();
    shared.cells.push({ cell_type: 'code', source: 'b' });
    expect(insertCodeBelow(shared, 0, 'print(6*7)')).toBe(1);
    expect(shared.cells.map(c => c.source)).toEqual(['a', 'print(6*7)', 'b']);
    expect(shared.cells[1]).toEqual({ cell_type: 'code', source: 'print(6*7)' });
    expect(shared.log).toEqual(['stop', 'begin', 'end', 'stop']);
  });

  it('appends when there is no active cell', () => {
    const shared = new FakeShared();
    expect(insertCodeBelow(shared, -1, 'x')).toBe(1);
    expect(insertCodeBelow(shared, 7, 'y')).toBe(2);
    expect(shared.cells.map(c => c.source)).toEqual(['a', 'x', 'y']);
  });
});

describe('undoableStep', () => {
  it('works without an undo manager', () => {
    let ran = false;
    undoableStep({ transact: f => f() }, () => (ran = true));
    expect(ran).toBe(true);
  });
});
