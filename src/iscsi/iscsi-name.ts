// The one iSCSI name rule of the project, for initiator names (nova's connector, the database's
// attachments) and target names alike: the RPC argument schemas, the target helpers (tgt, LIO)
// and the initiator side (src/connector) all check names here, so a name one part accepts is
// never refused by another.
import { invalidInput } from '../errors.js';
import { describeUntrusted } from '../validation/untrusted.js';

/** RFC 3720 3.2.6.1: an iSCSI name is at most 223 bytes. */
export const MAX_ISCSI_NAME_LENGTH = 223;

// iqn.YYYY-MM.reversed.domain[:anything made of name characters]. RFC 3722 allows a little more
// (stringprep output), but every initiator and target in practice stays in this ASCII set; a
// colon, a dot and a dash are the only punctuation (an underscore is tolerated: some hosts use it).
const IQN_RE = /^iqn\.\d{4}-\d{2}\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[A-Za-z0-9._:-]*)?$/;
const EUI_RE = /^eui\.[0-9A-Fa-f]{16}$/;
const NAA_RE = /^naa\.(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{32})$/;

/** True for iqn., eui. and naa. names as RFC 3720/3980 define them. */
export function isIscsiName(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_ISCSI_NAME_LENGTH && (IQN_RE.test(value) || EUI_RE.test(value) || NAA_RE.test(value));
}

/** A target IQN (target_prefix + volume name, or a connection_info's target_iqn). */
export function assertTargetIqn(value: unknown): asserts value is string {
  if (!isIscsiName(value)) {
    throw invalidInput(`target IQN must be an iSCSI name (iqn.YYYY-MM.domain:name, eui. or naa.), got ${describeUntrusted(value)}`);
  }
}

/** An initiator name from a connector: iqn., eui. or naa. */
export function assertInitiatorName(value: unknown): asserts value is string {
  if (!isIscsiName(value)) {
    throw invalidInput(`connector initiator must be an iSCSI name (iqn.YYYY-MM.domain:name, eui.<16 hex> or naa.<16|32 hex>), got ${describeUntrusted(value)}`);
  }
}
