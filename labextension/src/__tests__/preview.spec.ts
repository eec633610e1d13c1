import { callSummary, diffLines } from '../preview';

describe('diffLines', () => {
  it('classifies the lines of a unified diff', () => {
    const diff = [
      '--- cell 0 (now)',
      '+++ cell 0 (proposed)',
      '@@ -1,2 +1,2 @@',
      ' x = 1',
      '-y = x / 0',
      '+y = x / 1'
    ].join('\n');
    expect(diffLines(diff).map(l => l.kind)).toEqual(['file', 'file', 'hunk', 'context', 'del', 'add']);
    expect(diffLines(diff)[5].text).toBe('+y = x / 1');
  });

  it('gives no lines for no diff', () => {
    expect(diffLines('')).toEqual([]);
  });
});

describe('callSummary', () => {
  it('drops the previewed source and keeps the other arguments', () => {
    expect(callSummary('edit_cell', '{"cell":"abc","source":"x = 2"}', true)).toBe('edit_cell(cell="abc")');
    expect(callSummary('insert_cell', '{"source":"1","cell_type":"code","before":null}', true)).toBe(
      'insert_cell(cell_type="code")'
    );
  });

  it('shows the raw arguments without a preview or when they are not an object', () => {
    expect(callSummary('run_python', '{"code":"1+1"}', false)).toBe('run_python({"code":"1+1"})');
    expect(callSummary('edit_cell', 'not json', true)).toBe('edit_cell(not json)');
  });
});
