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




// NVMe Qualified Names (subsystem and host NQNs). The NVMe base spec allows any UTF-8 up to 223
// bytes after `nqn.`; cinder's own default subsystem NQN (`nqn.iqn.2010-10.org.openstack:-<id>`)
// breaks the spec's date/domain form, so only what makes a name safe is enforced: it is one
// configfs directory name (hosts/<nqn>, subsystems/<nqn>) and one nvme-cli argv element, hence
// letters, digits and . _ : - only (no '/', whitespace, or other characters a path or a log line
// would misread), and it is never the discovery subsystem, which the kernel keeps for itself.
const NQN_RE = /^nqn\.[A-Za-z0-9._:-]{1,219}$/;
const DISCOVERY_NQN = 'nqn.2014-08.org.nvmexpress.discovery';

export function isNqn(value: unknown): value is string {
  return isString(value) && NQN_RE.test(value) && value !== DISCOVERY_NQN && !value.includes('..');
}

export function assertNqn(value: unknown, what: string): asserts value is string {
  if (!isNqn(value)) {
    throw invalidInput(`${what} must be an NVMe qualified name: 'nqn.' then up to 219 letters, digits, '.', '_', ':' or '-' (not the discovery NQN), got ${describe(value)}`);
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
