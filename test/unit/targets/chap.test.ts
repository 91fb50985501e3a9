import { describe, expect, it } from 'vitest';
import {
  CHAP_ALPHABET,
  chapForExport,
  formatProviderAuth,
  generateChapCredentials,
  generatePassword,
  generateUsername,
  parseProviderAuth,
} from '../../../src/iscsi/chap.js';

const ALPHABET_RE = /^[23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz]+$/;

describe('CHAP credentials as cinder generates them', () => {
  it('uses cinder\'s alphabet: no 0, 1, I, O or l', () => {
    expect(CHAP_ALPHABET).toBe('23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz');
    expect(CHAP_ALPHABET).not.toMatch(/[01IOl]/);
  });

  it('makes 20-character user names and 16-character secrets from that alphabet', () => {
    for (let i = 0; i < 200; i++) {
      const { username, password } = generateChapCredentials();
      expect(username).toHaveLength(20);
      expect(password).toHaveLength(16);
      expect(username).toMatch(ALPHABET_RE);
      expect(password).toMatch(ALPHABET_RE);
    }
  });

  it('includes at least one digit, one upper and one lower case letter (one from each group)', () => {
    for (let i = 0; i < 200; i++) {
      const p = generatePassword();
      expect(p).toMatch(/[2-9]/);
      expect(p).toMatch(/[A-Z]/);
      expect(p).toMatch(/[a-z]/);
    }
  });

  it('honours other lengths like volume_utils.generate_password', () => {
    expect(generatePassword(2)).toHaveLength(2);
    expect(generatePassword(0)).toBe('');
    expect(generateUsername(30)).toHaveLength(30);
  });

  it('draws from the random source it is given (crypto by default)', () => {
    const draws: number[] = [];
    const rand = (max: number) => {
      draws.push(max);
      return 0;
    };
    const p = generatePassword(4, ['ab', 'cd'], rand);
    expect(p).toHaveLength(4);
    expect(draws.length).toBeGreaterThan(4);
    // no two runs with crypto randomness collide
    const seen = new Set(Array.from({ length: 500 }, () => generatePassword()));
    expect(seen.size).toBe(500);
  });

  it('is not biased towards the start of the alphabet (rough uniformity check)', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) for (const ch of generatePassword(16)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(CHAP_ALPHABET.length);
  });
});

describe('provider_auth', () => {
  it('formats "CHAP <user> <password>" and reads it back', () => {
    const creds = { username: 'abcdEFGH2345abcdEFGH', password: 'pass2345PASS2345' };
    const text = formatProviderAuth(creds);
    expect(text).toBe('CHAP abcdEFGH2345abcdEFGH pass2345PASS2345');
    expect(parseProviderAuth(text)).toEqual(creds);
  });

  it('reads nothing from null or empty', () => {
    expect(parseProviderAuth(null)).toBeNull();
    expect(parseProviderAuth(undefined)).toBeNull();
    expect(parseProviderAuth('')).toBeNull();
  });

  it('refuses malformed values without echoing the secret', () => {
    for (const bad of ['CHAP onlyuser', 'CHAP a b c', 'NONE a b', 'CHAP us;er pass', 'CHAP user pa$$word', 'CHAP user pass\nword']) {
      let err: unknown;
      try {
        parseProviderAuth(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toMatchObject({ className: 'InvalidInput' });
      expect((err as Error).message).not.toContain('pa$$word');
    }
  });

  it('create_export reuses stored credentials and generates new ones only when there are none', () => {
    const stored = 'CHAP 2rX53svf7cbhNF4R2J3E MaftGu8RAUnJ27XQ';
    expect(chapForExport(stored)).toEqual({ creds: { username: '2rX53svf7cbhNF4R2J3E', password: 'MaftGu8RAUnJ27XQ' }, generated: false });
    const fresh = chapForExport(null);
    expect(fresh.generated).toBe(true);
    expect(fresh.creds.username).toHaveLength(20);
  });
});
