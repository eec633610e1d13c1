import { headTail, INbCell, reduceCells } from '../notebookBridge';

interface IImg {
  head: string;
  bytes: number;
}
interface IOut {
  text: string;
  data: Record<string, string | IImg>;
}
interface ICellOut {
  execution_count: number | null;
  outputs: IOut[];
}

const png = 'iVBORw0KGgoAAAANSUhEUgAAAoAAAAHg' + 'A'.repeat(40000);

describe('reduceCells', () => {
  it('keeps ids, sources and counts, cuts long text head/tail and shrinks images to a header', () => {
    const cells: INbCell[] = [
      { id: 'md1', cell_type: 'markdown', source: ['# Title\n', 'text'] },
      {
        id: 'c1',
        cell_type: 'code',
        source: 'plot()',
        execution_count: 3,
        outputs: [
          { output_type: 'stream', name: 'stdout', text: 'a'.repeat(10000) + 'END' },
          { output_type: 'display_data', data: { 'image/png': png, 'text/plain': '<Figure>' }, metadata: {} },
          { output_type: 'execute_result', data: { 'text/html': '<b>x</b>' }, metadata: {}, execution_count: 3 }
        ]
      }
    ];
    const [md, code] = reduceCells(cells) as unknown as ICellOut[];
    expect(md).toEqual({
      id: 'md1',
      cell_type: 'markdown',
      source: '# Title\ntext',
      execution_count: null,
      outputs: []
    });
    expect(code.execution_count).toBe(3);
    expect(code.outputs[0].text.endsWith('END')).toBe(true);
    expect(code.outputs[0].text).toContain('characters elided');
    expect((code.outputs[1].data['image/png'] as IImg).head).toBe(png.slice(0, 1024));
    expect((code.outputs[1].data['image/png'] as IImg).bytes).toBe(Math.floor((png.length * 3) / 4));
    expect(code.outputs[1].data['text/plain']).toBe('<Figure>');
    expect(code.outputs[2].data).toEqual({ 'text/html': '<b>x</b>' });
  });

  it('halves the text limits until the whole snapshot fits the budget', () => {
    const cells: INbCell[] = Array.from({ length: 200 }, (_, i) => ({
      id: `c${i}`,
      cell_type: 'code',
      source: 'x'.repeat(5000),
      outputs: [{ output_type: 'stream', name: 'stdout', text: 'y'.repeat(5000) }]
    }));
    const reduced = reduceCells(cells, 200 * 1024);
    expect(new TextEncoder().encode(JSON.stringify(reduced)).length).toBeLessThanOrEqual(200 * 1024);
    expect(reduced).toHaveLength(200);
  });

  it('headTail leaves short text alone', () => {
    expect(headTail('short', 10)).toBe('short');
  });
});
