// Host side of test/lab/e2e-nvmet.lab.test.ts: the real cinder-api and scheduler
// (test/lab/e2e-stack.ts) for a backend exporting with nvmet over NVMe/TCP on 4420.
import { serveE2eStack } from './e2e-stack.js';

await serveE2eStack(process.argv[2] ?? '', { target_helper: 'nvmet', target_protocol: 'nvmet_tcp', target_port: '4420' });
