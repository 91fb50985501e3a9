// Host side of test/soak/lio-attach-soak.mts in the lab: the real cinder-api and scheduler
// (test/lab/e2e-stack.ts) for an LVM backend exporting with LIO over iSCSI, in the layout
// CB_SOAK_LAYOUT names (per-host unless per-volume). The soak's CB_SOAK_* options are handed to the
// guest through guest.env, since the guest inherits nothing of the host's environment.
import { serveE2eStack } from '../lab/e2e-stack.js';

const layout = process.env.CB_SOAK_LAYOUT === 'per-volume' ? 'per-volume' : 'per-host';
const passed: Record<string, string> = { CB_SOAK_LAYOUT: layout };
for (const [k, v] of Object.entries(process.env)) {
  if (!k.startsWith('CB_SOAK_') || v === undefined) continue;
  // guest.env is sourced by bash: plain values only
  if (!/^[\w.:/-]*$/.test(v)) throw new Error(`${k}: only letters, digits and . : / - _ can be handed to the guest, got ${JSON.stringify(v)}`);
  passed[k] ??= v;
}

await serveE2eStack(process.argv[2] ?? '', { target_helper: 'lioadm', target_protocol: 'iscsi', target_layout: layout }, passed);
