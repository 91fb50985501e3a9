// Asks a node process started with --inspect=HOST:PORT, over the DevTools protocol, for a full
// garbage collection and its memory figures afterwards, optionally writing a heap snapshot.
// Used by bench/attach-scale-bench.mts (CB_BENCH_INSPECT=1); runs as its own process because
// node 20 has a WebSocket client only behind a flag:
//
//   node --experimental-websocket bench/cdp-heap.mjs 127.0.0.1:9333 [snapshot-file]
//
// Prints one JSON line: process.memoryUsage() before and after the collection (bytes). Exits 2 on
// any failure (message on stderr).
import { createWriteStream } from 'node:fs';

const [hostPort, snapshotFile] = process.argv.slice(2);
if (!hostPort) {
  console.error('usage: cdp-heap.mjs HOST:PORT [snapshot-file]');
  process.exit(2);
}
const timer = setTimeout(() => {
  console.error('timed out');
  process.exit(2);
}, 120_000);

try {
  const list = await (await fetch(`http://${hostPort}/json/list`)).json();
  const url = list[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no debugger target at ${hostPort}`);
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
  });
  let id = 0;
  const pending = new Map();
  let snapshot = null;
  ws.onmessage = (ev) => {
    const m = JSON.parse(String(ev.data));
    if (m.method === 'HeapProfiler.addHeapSnapshotChunk') {
      snapshot?.write(m.params.chunk);
      return;
    }
    const p = m.id === undefined ? undefined : pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(`${m.error.message}`));
    else p.resolve(m.result);
  };
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const i = ++id;
      pending.set(i, { resolve, reject });
      ws.send(JSON.stringify({ id: i, method, params }));
    });
  const evaluate = async (expression) => {
    const r = await send('Runtime.evaluate', { expression, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`evaluate failed: ${JSON.stringify(r.exceptionDetails).slice(0, 300)}`);
    return JSON.parse(r.result.value);
  };
  const usage = 'JSON.stringify(process.memoryUsage())';
  const before = await evaluate(usage);
  await send('HeapProfiler.enable');
  await send('HeapProfiler.collectGarbage');
  await send('HeapProfiler.collectGarbage');
  const after = await evaluate(usage);
  if (snapshotFile) {
    snapshot = createWriteStream(snapshotFile);
    await send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    await new Promise((r) => snapshot.end(r));
  }
  await send('HeapProfiler.disable');
  ws.close();
  console.log(JSON.stringify({ before, after }));
  clearTimeout(timer);
  process.exit(0);
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(2);
}
