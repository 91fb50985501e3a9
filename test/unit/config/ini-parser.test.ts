import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { parseIni } from '../../../src/config/ini-parser.js';

function values(text: string, section: string, key: string): string[] | undefined {
  return parseIni(text, 'x.conf').sections.get(section)?.entries.get(key)?.map((v) => v.value);
}

describe('oslo INI dialect', () => {
  it('reads key = value and key: value, splitting at the first of = and :', () => {
    const text = '[DEFAULT]\na = 1\nb: 2\nc = x:y\nd: u=v\nurl = rabbit://g:g@h:5672/\n';
    expect(values(text, 'DEFAULT', 'a')).toEqual(['1']);
    expect(values(text, 'DEFAULT', 'b')).toEqual(['2']);
    expect(values(text, 'DEFAULT', 'c')).toEqual(['x:y']);
    expect(values(text, 'DEFAULT', 'd')).toEqual(['u=v']);
    expect(values(text, 'DEFAULT', 'url')).toEqual(['rabbit://g:g@h:5672/']);
  });

  it('strips values and one pair of matching quotes, as oslo does', () => {
    const text = '[s]\na =   spaced   \nb = "quoted value"\nc = \'single\'\nd = "mismatch\'\ne = "\nf = ""\ng =\n';
    expect(values(text, 's', 'a')).toEqual(['spaced']);
    expect(values(text, 's', 'b')).toEqual(['quoted value']);
    expect(values(text, 's', 'c')).toEqual(['single']);
    expect(values(text, 's', 'd')).toEqual(['"mismatch\'']);
    expect(values(text, 's', 'e')).toEqual(['']);
    expect(values(text, 's', 'f')).toEqual(['']);
    expect(values(text, 's', 'g')).toEqual(['']);
  });

  it('joins continuation lines with newlines; a blank line ends the value', () => {
    const text = '[s]\nfilter_function = a\n  and b\n\tand c\n\nnext = 1\n';
    expect(values(text, 's', 'filter_function')).toEqual(['a\nand b\nand c']);
    expect(values(text, 's', 'next')).toEqual(['1']);
  });

  it('treats an indented comment right after a value as a continuation, like oslo', () => {
    expect(values('[s]\na = 1\n  # not a comment\n', 's', 'a')).toEqual(['1\n# not a comment']);
  });

  it('ignores # and ; comments at line start only', () => {
    const text = '# top\n[s]\n; semi\na = 1 # kept\n#b = 2\n';
    expect(values(text, 's', 'a')).toEqual(['1 # kept']);
    expect(values(text, 's', 'b')).toBeUndefined();
  });

  it('collects repeated keys in order, across repeated and differently-cased sections', () => {
    const text = '[LVM]\nk = 1\n[other]\n[lvm]\nk = 2\nk = 3\n';
    expect(values(text, 'lvm', 'k')).toEqual(['1', '2', '3']);
    const f = parseIni(text, 'x.conf');
    expect(f.sections.get('lvm')?.name).toBe('LVM');
  });

  it('keeps DEFAULT distinct from [default]', () => {
    const f = parseIni('[default]\na = 1\n[DEFAULT]\nb = 2\n', 'x.conf');
    expect([...f.sections.keys()]).toEqual(['default', 'DEFAULT']);
  });

  it('records file, line, section and key of each value', () => {
    const f = parseIni('[DEFAULT]\n\n# c\nhost = a\n  b\n', '/etc/cinder/cinder.conf');
    expect(f.sections.get('DEFAULT')!.entries.get('host')![0]).toEqual({
      value: 'a\nb',
      file: '/etc/cinder/cinder.conf',
      line: 4,
      section: 'DEFAULT',
      key: 'host',
    });
  });

  it('accepts CRLF and CR line endings and a byte-order mark', () => {
    expect(values('\uFEFF[s]\r\na = 1\r\nb = 2\rc = 3', 's', 'c')).toEqual(['3']);
    expect(values('[s]\r\na = 1\r\n', 's', 'a')).toEqual(['1']);
  });

  it.each([
    ['a = 1\n', 1, 'Section must be started before assignment'],
    ['[s]\nnovalue\n', 2, "No ':' or '=' found"],
    ['[s]\n= 1\n', 2, 'Key cannot be empty'],
    ['[s]\n: 1\n', 2, 'Key cannot be empty'],
    ['[s\n', 1, 'Invalid section'],
    ['[]\n', 1, 'Empty section name'],
    ['[s]\n  indented\n', 2, 'Unexpected continuation line'],
    ['[s]\na = 1\n# c\n  indented\n', 4, 'Unexpected continuation line'],
  ])('rejects %j at line %i', (text, line, message) => {
    let err: unknown;
    try {
      parseIni(text, '/tmp/bad.conf');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(`/tmp/bad.conf at line ${line}`);
    expect((err as Error).message).toContain(message);
  });
});
