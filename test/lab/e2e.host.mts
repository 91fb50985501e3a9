// Host side of test/lab/e2e.lab.test.ts: the real cinder-api and scheduler (test/lab/e2e-stack.ts)
// for a backend exporting with LIO over iSCSI, and glance-api for its image steps.
import { serveE2eStack } from './e2e-stack.js';

await serveE2eStack(process.argv[2] ?? '', { target_helper: 'lioadm', target_protocol: 'iscsi' }, {}, { glance: true });
