import { describe, expect, it } from 'vitest';
import { convertScalar, pythonStr, ValueError } from '../../../src/config/convert.js';
import type { TypeSpec } from '../../../src/config/convert.js';

const conv = (spec: TypeSpec, raw: string): unknown => convertScalar(spec, raw);

describe('oslo types', () => {
  it.each(['true', 'TRUE', 'True', 'yes', 'YES', 'on', 'On', '1'])('bool accepts %s as true', (s) => {
    expect(conv({ type: 'bool' }, s)).toBe(true);
  });
  it.each(['false', 'FALSE', 'no', 'No', 'off', 'OFF', '0'])('bool accepts %s as false', (s) => {
    expect(conv({ type: 'bool' }, s)).toBe(false);
  });
  it.each(['', 'y', 'n', 'enabled', '2', 't'])('bool rejects %j', (s) => {
    expect(() => conv({ type: 'bool' }, s)).toThrow(ValueError);
  });

  it('int accepts what Python int() accepts and checks bounds', () => {
    expect(conv({ type: 'int' }, '60')).toBe(60);
    expect(conv({ type: 'int' }, ' -5 ')).toBe(-5);
    expect(conv({ type: 'int' }, '+7')).toBe(7);
    expect(conv({ type: 'int' }, '1_000')).toBe(1000);
    expect(conv({ type: 'int' }, '010')).toBe(10);
    for (const bad of ['1.5', '0x10', 'ten', '1e3', '1__0']) expect(() => conv({ type: 'int' }, bad)).toThrow(ValueError);
    expect(() => conv({ type: 'int', min: 0, max: 100 }, '101')).toThrow(/less than or equal to 100/);
    expect(() => conv({ type: 'int', min: 3 }, '2')).toThrow(/greater than or equal to 3/);
  });

  it('an empty number is None, as for oslo', () => {
    expect(conv({ type: 'int' }, '')).toBeNull();
    expect(conv({ type: 'float' }, '  ')).toBeNull();
  });

  it('float accepts Python float() syntax', () => {
    expect(conv({ type: 'float' }, '1.0')).toBe(1);
    expect(conv({ type: 'float' }, '.5')).toBe(0.5);
    expect(conv({ type: 'float' }, '2.')).toBe(2);
    expect(conv({ type: 'float' }, '1e3')).toBe(1000);
    expect(conv({ type: 'float' }, '-inf')).toBe(-Infinity);
    expect(() => conv({ type: 'float' }, 'abc')).toThrow(ValueError);
    expect(() => conv({ type: 'float', min: 0, max: 4.5 }, '5')).toThrow(/4.5/);
  });

  it('port is an integer from 0 to 65535', () => {
    expect(conv({ type: 'port' }, '3260')).toBe(3260);
    expect(() => conv({ type: 'port' }, '65536')).toThrow(ValueError);
    expect(() => conv({ type: 'port' }, '-1')).toThrow(ValueError);
  });

  it('list splits on commas, strips items, drops trailing commas', () => {
    expect(conv({ type: 'list' }, 'lvm, lvm2 ,x')).toEqual(['lvm', 'lvm2', 'x']);
    expect(conv({ type: 'list' }, 'a,b,,')).toEqual(['a', 'b']);
    expect(conv({ type: 'list' }, '')).toEqual([]);
    expect(conv({ type: 'list' }, 'a,,b')).toEqual(['a', '', 'b']);
  });

  it('str checks choices (exactly, or ignoring case when asked) and regex', () => {
    expect(conv({ type: 'str', choices: ['none', 'zero'] }, 'zero')).toBe('zero');
    expect(() => conv({ type: 'str', choices: ['none', 'zero'] }, 'Zero')).toThrow(/valid values are \[none, zero\]/);
    expect(conv({ type: 'str', choices: ['iSCSI', 'FC'], ignoreCase: true }, 'iscsi')).toBe('iscsi');
    const ratio: TypeSpec = { type: 'str', regex: /^(auto|\d*\.\d+|\d+)$/ };
    for (const ok of ['auto', '20', '20.0', '.5']) expect(conv(ratio, ok)).toBe(ok);
    for (const bad of ['', 'AUTO', '1.', 'x']) expect(() => conv(ratio, bad)).toThrow(ValueError);
  });

  it('hostaddress takes IP addresses and host names', () => {
    for (const ok of ['127.0.0.1', '::1', 'fe80::1', 'storage1', 'a.example.org', 'host.']) {
      expect(conv({ type: 'hostaddress' }, ok)).toBe(ok);
    }
    for (const bad of ['', '-bad', 'a..b', '1.2.3', 'under_score']) expect(() => conv({ type: 'hostaddress' }, bad)).toThrow(ValueError);
  });

  it('uri needs a scheme and a host', () => {
    expect(conv({ type: 'uri' }, 'http://h:1/x')).toBe('http://h:1/x');
    expect(() => conv({ type: 'uri' }, 'nohost')).toThrow(ValueError);
  });

  it('pythonStr renders converted values as Python str() does', () => {
    expect(pythonStr(true, 'bool')).toBe('True');
    expect(pythonStr(60, 'int')).toBe('60');
    expect(pythonStr(1, 'float')).toBe('1.0');
    expect(pythonStr(null, 'str')).toBe('');
    expect(pythonStr(['a', 'b'], 'list')).toBe("['a', 'b']");
  });
});
