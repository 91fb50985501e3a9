import { describe, expect, it } from 'vitest';
import { cell, EXIT, keyValues, table } from '../../../src/cli/output.js';

describe('debug CLI output', () => {
  it('pads table columns to the widest cell and shows null as -', () => {
    const t = table(['ID', 'STATUS', 'SIZE'], [
      ['a1', 'available', 1],
      ['b2-long-id', null, 10],
    ]);
    expect(t).toBe(['ID          STATUS     SIZE', 'a1          available  1', 'b2-long-id  -          10', ''].join('\n'));
  });

  it('writes cells as an operator reads them', () => {
    expect(cell(true)).toBe('yes');
    expect(cell(false)).toBe('no');
    expect(cell([])).toBe('-');
    expect(cell(['x', 'y'])).toBe('x,y');
    expect(cell(new Date('2026-12-02T12:00:00.123Z'))).toBe('2026-12-02T12:00:00Z');
    expect(cell(undefined)).toBe('-');
    expect(cell('')).toBe('-');
    expect(cell(0)).toBe('0');
  });

  it('aligns key: value lines', () => {
    expect(keyValues([['id', 'x'], ['status', 'in-use']], '  ')).toBe('  id:     x\n  status: in-use\n');
  });

  it('keeps the exit codes scripts test stable', () => {
    expect(EXIT).toEqual({ ok: 0, problems: 1, usage: 2, unreachable: 3, notFound: 4 });
  });
});
