// Log masking stays linear on hostile input (issue 10: a 1 MiB request_id hung the agent in the
// URL-password regex) and keeps masking exactly what it masked before.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, LOG_STRING_LIMIT, MASK, scrub, scrubForLog, scrubText, truncateForLog, withRequestScope } from '../../../src/log.js';

/** The masking as it was before the rewrite (quadratic on long scheme-like runs): the reference. */
function previousScrubText(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@/\s]+@/gi, `$1${MASK}@`)
    .replace(/\bCHAP\s+\S+\s+\S+/g, `CHAP ${MASK} ${MASK}`)
    .replace(/\b(incominguser|outgoinguser)\s+\S+\s+\S+/gi, `$1 ${MASK} ${MASK}`)
    .replace(/((?:pass(?:word)?|secret|token)["']?\s*[=:]\s*["']?)[^\s"',}]+/gi, `$1${MASK}`);
}

const MIB = 1 << 20;

describe('scrubText', () => {
  it('masks what it always masked', () => {
    expect(scrubText('rabbit://guest:s3cret@10.0.0.5:5672,guest:other@10.0.0.6:5672/')).toBe('rabbit://guest:***@10.0.0.5:5672,guest:other@10.0.0.6:5672/');
    expect(scrubText('mysql+pymysql://cinder:dbpass@db/cinder')).toBe('mysql+pymysql://cinder:***@db/cinder');
    expect(scrubText('x http://:pw@h y https://u:p@q')).toBe('x http://:***@h y https://u:***@q');
    expect(scrubText('1abc://u:p@h')).toBe('1abc://u:***@h');
    expect(scrubText('HTTP://U:P@H')).toBe('HTTP://U:***@H');
    expect(scrubText('a://u:p:q@h')).toBe('a://u:***@h');
    expect(scrubText('a://u@h a://u:@h a://u:p/x@h a://u:p')).toBe('a://u@h a://u:@h a://u:p/x@h a://u:p');
    expect(scrubText('discovery.sendtargets.auth.password CHAP user pass tail')).toBe('discovery.sendtargets.auth.password CHAP *** *** tail');
    expect(scrubText('incominguser u1 p1; OutgoingUser u2 p2')).toBe('incominguser *** *** OutgoingUser *** ***');
    expect(scrubText('password=hunter2 token: "abc" secret=\'x\',y')).toBe('password=*** token: "***" secret=\'***\',y');
  });

  it('matches the previous regexes on every short mix of the tokens that matter', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const mixes = (tokens: string[], maxLen: number, count: number): number => {
      let masked = 0;
      for (let k = 0; k < count; k++) {
        let s = '';
        const len = 1 + rnd(maxLen);
        for (let j = 0; j < len; j++) s += tokens[rnd(tokens.length)];
        const out = scrubText(s);
        expect(out, JSON.stringify(s)).toBe(previousScrubText(s));
        if (out !== s) masked++;
      }
      return masked;
    };
    // everything at once
    expect(mixes(['a', 'Z', '1', '+', '.', '-', ':', '/', '//', '://', '@', ' ', '\t', '\u00a0', '\u2028', 'x', 'é', 'CHAP', 'incominguser', 'pass', 'word', 'token', '=', '"', "'", ',', '}'], 14, 20_000)).toBeGreaterThan(100);
    // URLs: schemes, users, passwords and their delimiters, so that many of them match
    expect(mixes(['a', 'Z', '1', '+', '-', '.', 'a://', '://', 'u', 'u:', ':', 'p', 'p@', '@', '/', ' ', '\u3000', 'é'], 12, 30_000)).toBeGreaterThan(200);
  });

  // No timing assertions: each of these took minutes (or hours) before the rewrite, so finishing
  // within the test timeout is the claim.
  it.each([
    ['a long scheme-like run', 'a'.repeat(MIB)],
    ['a URL with no end', `a://${'x'.repeat(MIB)}`],
    ['many colons without @', `a://u${':'.repeat(MIB)}`],
    ['many schemes without @', 'a://u:p'.repeat(MIB / 7)],
    ["'password=' repeated", 'password='.repeat(MIB / 9)],
    ["'password ' repeated with no value", 'password '.repeat(MIB / 9)],
    ["'CHAP ' repeated", 'CHAP '.repeat(MIB / 5)],
    ['CHAP then whitespace', `CHAP${' '.repeat(MIB)}`],
    ["'incominguser ' repeated", 'incominguser '.repeat(MIB / 13)],
    ['a request id of 1 MiB', `req-${'0123456789abcdef'.repeat(MIB / 16)}`],
  ])('finishes on 1 MiB of %s', (_name, input) => {
    const out = scrubText(input);
    expect(typeof out).toBe('string');
  });

  it('still masks a password at the end of 1 MiB of noise', () => {
    expect(scrubText(`${'a'.repeat(MIB)} rabbit://u:pw@h`).endsWith('rabbit://u:***@h')).toBe(true);
  });
});

describe('log lines are bounded', () => {
  it('truncateForLog cuts with a marker that says how long the string was', () => {
    expect(truncateForLog('abc', 5)).toBe('abc');
    expect(truncateForLog('abcdefgh', 5)).toBe('abcde…[truncated, 8 chars]');
    // never half a surrogate pair
    expect(truncateForLog('abcd\u{1F600}x', 5)).toBe('abcd…[truncated, 7 chars]');
  });

  it('scrub() itself does not truncate (failure kwargs go out whole)', () => {
    const long = 'v'.repeat(LOG_STRING_LIMIT * 2);
    expect(scrub({ a: long })).toEqual({ a: long });
    expect((scrubForLog({ a: long }) as { a: string }).a.length).toBeLessThan(LOG_STRING_LIMIT + 40);
  });

  it('a line carries no field, mixin id or message longer than the limit, and secrets stay masked', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cb-log-'));
    const file = path.join(dir, 'log.jsonl');
    try {
      const l = createLogger({ level: 'info', pretty: false, destination: file });
      const big = `req-${'a'.repeat(MIB)}`;
      withRequestScope({ request_id: big, global_request_id: null }, () => {
        l.info({ nested: { deep: [big] }, [big]: 1, url: `rabbit://u:SECRETPW@h ${big}` }, `message ${big}`);
      });
      const line = readFileSync(file, 'utf8');
      const rec = JSON.parse(line) as Record<string, unknown>;
      expect(line.length).toBeLessThan(8 * LOG_STRING_LIMIT);
      expect(line).not.toContain('SECRETPW');
      expect(String(rec.request_id)).toMatch(/…\[truncated, 1048580 chars\]$/);
      expect(String(rec.msg)).toMatch(/…\[truncated, 1048588 chars\]$/);
      // a child logger's bindings are bounded and masked too
      l.child({ backend: big, password: 'hunter2' }).info('child line');
      const child = JSON.parse(readFileSync(file, 'utf8').trim().split('\n').pop() as string) as Record<string, unknown>;
      expect(String(child.backend)).toMatch(/…\[truncated, 1048580 chars\]$/);
      expect(child.password).toBe(MASK);
      expect(child.pid).toBe(process.pid);
      // and a grandchild keeps both generations of bindings
      l.child({ a: 1 }).child({ b: 2 }).info('grandchild line');
      const grand = JSON.parse(readFileSync(file, 'utf8').trim().split('\n').pop() as string) as Record<string, unknown>;
      expect(grand).toMatchObject({ a: 1, b: 2, msg: 'grandchild line' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
