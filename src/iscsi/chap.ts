// CHAP credentials as cinder makes them (volume/volume_utils.py generate_username /
// generate_password): one character from each symbol group, then random characters from all
// groups, shuffled; 20 characters for the user name, 16 for the secret. cinder draws with
// os.urandom; here every draw is crypto.randomInt, so there is no modulo bias either.
//
// provider_auth is stored on the volume as `CHAP <user> <password>` and reused by every later
// create_export/ensure_export (targets/iscsi.py _get_target_chap_auth), so the credentials of a
// volume never change while it exists.
import { randomInt } from 'node:crypto';
import { invalidInput } from '../errors.js';

/** cinder's DEFAULT_PASSWORD_SYMBOLS: no 0/1, no I/O, no l. */
export const CHAP_SYMBOL_GROUPS = ['23456789', 'ABCDEFGHJKLMNPQRSTUVWXYZ', 'abcdefghijkmnopqrstuvwxyz'] as const;
export const CHAP_ALPHABET = CHAP_SYMBOL_GROUPS.join('');
export const CHAP_USERNAME_LENGTH = 20;
export const CHAP_PASSWORD_LENGTH = 16;

export interface ChapCredentials {
  username: string;
  password: string;
}

export type RandomInt = (maxExclusive: number) => number;

const cryptoRandom: RandomInt = (max) => randomInt(max);

function shuffle(chars: string[], rand: RandomInt): void {
  for (let i = chars.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    const t = chars[i] as string;
    chars[i] = chars[j] as string;
    chars[j] = t;
  }
}

/** volume_utils.generate_password(length, symbolgroups) */
export function generatePassword(
  length = CHAP_PASSWORD_LENGTH,
  groups: readonly string[] = CHAP_SYMBOL_GROUPS,
  rand: RandomInt = cryptoRandom,
): string {
  const chars = groups.map((g) => g[rand(g.length)] as string);
  shuffle(chars, rand);
  const out = chars.slice(0, Math.max(0, length));
  const all = groups.join('');
  while (out.length < length) out.push(all[rand(all.length)] as string);
  shuffle(out, rand);
  return out.join('');
}

/** volume_utils.generate_username: the same generator, 20 characters. */
export function generateUsername(
  length = CHAP_USERNAME_LENGTH,
  groups: readonly string[] = CHAP_SYMBOL_GROUPS,
  rand: RandomInt = cryptoRandom,
): string {
  return generatePassword(length, groups, rand);
}

export function generateChapCredentials(rand: RandomInt = cryptoRandom): ChapCredentials {
  return { username: generateUsername(CHAP_USERNAME_LENGTH, CHAP_SYMBOL_GROUPS, rand), password: generatePassword(CHAP_PASSWORD_LENGTH, CHAP_SYMBOL_GROUPS, rand) };
}

/** `CHAP <user> <password>` (targets/iscsi.py _iscsi_authentication). */
export function formatProviderAuth(creds: ChapCredentials): string {
  assertChapCredential(creds.username, 'username');
  assertChapCredential(creds.password, 'password');
  return `CHAP ${creds.username} ${creds.password}`;
}

/**
 * The credentials in a provider_auth value, or null when there are none (null/empty). Like cinder's
 * `auth.split()` it wants exactly three whitespace-separated words; unlike cinder it also insists on
 * the method being CHAP and on credentials that are safe to hand to tgtadm.
 */
export function parseProviderAuth(providerAuth: string | null | undefined): ChapCredentials | null {
  if (providerAuth === null || providerAuth === undefined || providerAuth.trim() === '') return null;
  const words = providerAuth.trim().split(/\s+/);
  if (words.length !== 3 || words[0] !== 'CHAP') {
    throw invalidInput('provider_auth must be "CHAP <username> <password>"');
  }
  const [, username, password] = words as [string, string, string];
  assertChapCredential(username, 'username');
  assertChapCredential(password, 'password');
  return { username, password };
}

/** Reuse the volume's stored credentials, or make new ones as cinder's create_export does. */
export function chapForExport(providerAuth: string | null | undefined, rand: RandomInt = cryptoRandom): { creds: ChapCredentials; generated: boolean } {
  const stored = parseProviderAuth(providerAuth);
  if (stored) return { creds: stored, generated: false };
  return { creds: generateChapCredentials(rand), generated: true };
}

// CHAP names and secrets as cinder generates them are alphanumeric. Anything else (a space, a
// newline, a quote) would break the tgt config file or be read by tgtadm as another option.
const CHAP_RE = /^[A-Za-z0-9]{1,255}$/;

export function assertChapCredential(value: unknown, which: 'username' | 'password'): asserts value is string {
  if (typeof value !== 'string' || !CHAP_RE.test(value)) {
    // never echo the value: it is a secret
    throw invalidInput(`CHAP ${which} must be 1-255 letters or digits`);
  }
}
