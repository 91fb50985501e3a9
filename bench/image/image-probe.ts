// Child process of bench/image/image-bench.mts: one create-from-image or one upload, done by the
// agent's own image code (src/image) as the agent runs it (compiled JS, plain node), then prints
// the time and this process's peak resident set (VmHWM) as JSON.
//   image-probe.js fetch GLANCE_URL IMAGE_ID DEST SIZE_GB CONVERSION_DIR
//   image-probe.js upload GLANCE_URL IMAGE_ID VOLUME_PATH SIZE_GB CONVERSION_DIR DISK_FORMAT
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { processRunner } from '../../src/exec/run-command.js';
import { fetchToVolume } from '../../src/image/fetch-to-volume.js';
import { GlanceClient } from '../../src/image/glance-client.js';
import { imageTools } from '../../src/image/image-tools.js';
import { uploadVolume } from '../../src/image/upload-volume.js';
import { createLogger } from '../../src/log.js';

function kib(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

const [op, url, imageId, path, sizeArg, conversionDir, diskFormat] = process.argv.slice(2);
if (!op || !url || !imageId || !path || !sizeArg || !conversionDir) throw new Error('usage: image-probe.js fetch|upload URL IMAGE PATH SIZE_GB CONVERSION_DIR [DISK_FORMAT]');
const sizeGb = Number(sizeArg);
const logger = createLogger({ level: 'warn', pretty: false });
// the agent's defaults from cinder.conf (image_compress_on_upload True, cinder's prlimits)
const tools = imageTools({
  glance: new GlanceClient({ apiServers: [url], numRetries: 0, requestTimeoutSec: null, logger }),
  runner: processRunner({ timeoutMs: 0 }),
  options: {
    conversionDir,
    conversionDisabled: false,
    compressOnUpload: true,
    vmdkAllowedTypes: ['streamOptimized', 'monolithicSparse'],
    verifySignatures: 'disabled',
    limits: { cpuSeconds: 60, addressSpaceGiB: 1 },
    backendName: 'bench',
  },
  logger,
});
const before = kib('VmRSS');
let during = before;
const sampler = setInterval(() => (during = Math.max(during, kib('VmRSS'))), 100);
const t0 = performance.now();
let how: string;
if (op === 'fetch') {
  const image = await tools.glance().show({}, imageId);
  how = (await fetchToVolume(tools, {}, image, { path, sizeGb, readsZeros: true })).path;
} else {
  how = (await uploadVolume(tools, {}, { imageId, diskFormat: diskFormat ?? 'raw', containerFormat: 'bare', volumePath: path, volumeSizeGb: sizeGb })).path;
}
const seconds = (performance.now() - t0) / 1000;
clearInterval(sampler);
console.log(JSON.stringify({ seconds, how, rssBeforeKiB: before, rssDuringMaxKiB: during, peakKiB: kib('VmHWM') }));
