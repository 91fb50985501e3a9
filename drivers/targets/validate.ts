// Checks for every value that reaches a target tool's command line or a target config file.
// Values come from the database (volume names, provider_auth), from nova (connector initiator
// names) and from configuration; none of them is trusted. Each check throws cinder's InvalidInput
// with a message that names the field and the rule, never the secret itself.
import { invalidInput } from '../../src/errors.js';
import { describeUntrusted as describe } from '../../src/validation/untrusted.js';

// iSCSI names, portals and CHAP credentials: the rules the initiator side shares, in src/iscsi/.

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

// cinder's volume_name_template is `volume-%s`; the name is used as a file name in volumes_dir and
// as the last part of the IQN, so it is one path component made of IQN characters.
const VOLUME_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function assertVolumeName(value: unknown): asserts value is string {
  if (!isString(value) || !VOLUME_NAME_RE.test(value) || value.includes('..')) {
    throw invalidInput(
      `volume name must be letters, digits, '.', '_' or '-' (no path separators), got ${describe(value)}`,
    );
  }
}

// Backing stores are /dev/<vg>/<lv>, /dev/mapper/..., or files under a configured directory. The
// path goes to tgtadm as one argv element, into `--params path=...` (comma separated), and into
// the whitespace-separated tgt config file: so no whitespace, no comma, no '=', no quotes.
const PATH_RE = /^\/[A-Za-z0-9._+@:/-]*$/;

export function assertBackingPath(value: unknown): asserts value is string {
  if (!isString(value) || !PATH_RE.test(value) || value.split('/').some((c) => c === '..' || c === '.') || value.includes('//')) {
    throw invalidInput(
      `backing store must be an absolute, normalised path of letters, digits and . _ + @ : - / (no whitespace, newline, comma or '..'), got ${describe(value)}`,
    );
  }
}

/** A directory such as volumes_dir: absolute, normalised, no whitespace. */
export function assertDirectory(value: unknown, what: string): asserts value is string {
  if (!isString(value) || !PATH_RE.test(value) || value.split('/').some((c) => c === '..' || c === '.')) {
    throw invalidInput(`${what} must be an absolute, normalised path without whitespace, got ${describe(value)}`);
  }
}




/** tgt's bsoflags: `sync`, `direct` or `sync:direct` (iscsi_target_flags). */
export function assertBsoflags(value: unknown): asserts value is string {
  if (!isString(value) || !/^(?:sync|direct)(?::(?:sync|direct))?$/.test(value)) {
    throw invalidInput(`iscsi_target_flags must be sync, direct or sync:direct, got ${describe(value)}`);
  }
}

/** A positive integer id (tgt tid, session id, connection id, LUN). */
export function assertId(value: unknown, what: string, min = 0): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalidInput(`${what} must be an integer >= ${min}, got ${describe(String(value))}`);
  }
}
