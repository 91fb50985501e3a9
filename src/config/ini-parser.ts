// The INI dialect of oslo.config (oslo_config/iniparser.py + cfg.ConfigParser), which is not
// Python's configparser:
//   - `[name]` starts a section; the name is taken verbatim between the brackets, and sections are
//     matched case-insensitively except `DEFAULT` (cfg._normalize_group_name);
//   - `key = value` or `key: value`, split at whichever of '=' / ':' comes first; key and value are
//     stripped, and one pair of matching surrounding quotes is removed from the first line;
//   - a line that starts with a space or tab continues the previous value (joined with '\n'); a
//     blank line or any other line ends it — so an indented `# text` right after a value is part of
//     the value, as it is for oslo;
//   - `#` and `;` start a comment only at the beginning of a line (never inline);
//   - a key repeated in a section (or a section repeated in a file) collects every value in order;
//     the option's type decides whether the last one or all of them count.
// Every value keeps the file and line it came from so errors and `config show` can point at it.
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

export interface IniValue {
  /** The value with continuation lines joined by '\n'; not interpolated. */
  readonly value: string;
  readonly file: string;
  /** 1-based line of the `key = value` line. */
  readonly line: number;
  /** Section name as written in the file. */
  readonly section: string;
  readonly key: string;
}

export interface IniSection {
  /** Name as first written (`[LVM]` and `[lvm]` share one IniSection keyed `lvm`). */
  readonly name: string;
  readonly line: number;
  /** key → every value given for it in this file, in file order. */
  readonly entries: Map<string, IniValue[]>;
}

export interface IniFile {
  readonly file: string;
  /** Keyed by normalized section name (see normalizeSectionName). */
  readonly sections: Map<string, IniSection>;
}

/** oslo matches group names case-insensitively, except that only `DEFAULT` itself is DEFAULT. */
export function normalizeSectionName(name: string): string {
  return name === 'DEFAULT' ? name : name.toLowerCase();
}

function parseError(file: string, line: number, message: string, text?: string): ConfigError {
  const shown = text === undefined ? '' : `: ${JSON.stringify(text)}`;
  return new ConfigError(`Failed to parse ${file} at line ${line}: ${message}${shown}`);
}

/** Parses the text of one config file. `file` is only used to label values and errors. */
export function parseIni(text: string, file: string): IniFile {
  const sections = new Map<string, IniSection>();
  // Python reads config files in universal-newline mode. A UTF-8 byte-order mark would make oslo
  // fail on the first line; accepting it costs nothing.
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);

  let section: IniSection | null = null;
  let key: string | null = null;
  let keyLine = 0;
  let keyText = '';
  let parts: string[] = [];

  const flush = (): void => {
    if (key === null) return;
    if (section === null) throw parseError(file, keyLine, 'Section must be started before assignment', keyText);
    const value: IniValue = { value: parts.join('\n'), file, line: keyLine, section: section.name, key };
    const list = section.entries.get(key);
    if (list) list.push(value);
    else section.entries.set(key, [value]);
    key = null;
    parts = [];
  };

  for (let i = 0; i < lines.length; i++) {
    const lineno = i + 1;
    const line = lines[i]!.trimEnd();
    if (line === '') {
      flush();
      continue;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      if (key === null) throw parseError(file, lineno, 'Unexpected continuation line', line);
      parts.push(line.trimStart());
      continue;
    }
    flush();
    if (line[0] === '[') {
      if (!line.endsWith(']')) throw parseError(file, lineno, 'Invalid section (must end with ])', line);
      if (line.length <= 2) throw parseError(file, lineno, 'Empty section name', line);
      const name = line.slice(1, -1);
      const norm = normalizeSectionName(name);
      section = sections.get(norm) ?? { name, line: lineno, entries: new Map() };
      sections.set(norm, section);
    } else if (line[0] === '#' || line[0] === ';') {
      continue;
    } else {
      const [k, v] = splitKeyValue(line, file, lineno);
      if (k === '') throw parseError(file, lineno, 'Key cannot be empty', line);
      key = k;
      keyLine = lineno;
      keyText = line;
      parts = [v];
    }
  }
  flush();
  return { file, sections };
}

function splitKeyValue(line: string, file: string, lineno: number): [string, string] {
  const colon = line.indexOf(':');
  const equal = line.indexOf('=');
  if (colon < 0 && equal < 0) throw parseError(file, lineno, "No ':' or '=' found in assignment", line);
  const at = colon < 0 || (equal >= 0 && equal < colon) ? equal : colon;
  let value = line.slice(at + 1).trim();
  // Exactly oslo's rule: first and last characters equal and a quote. A lone `"` becomes ''.
  if (value !== '' && (value[0] === '"' || value[0] === "'") && value[0] === value[value.length - 1]) {
    value = value.slice(1, -1);
  }
  return [line.slice(0, at).trim(), value];
}

/** Reads and parses one file; a missing or unreadable file is a ConfigError naming the path. */
export function readIniFile(path: string): IniFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`Config file not found: ${path}`);
    if (code === 'EACCES') throw new ConfigError(`Permission denied reading config file: ${path}`);
    throw new ConfigError(`Cannot read config file ${path}: ${(err as Error).message}`);
  }
  return parseIni(text, path);
}
