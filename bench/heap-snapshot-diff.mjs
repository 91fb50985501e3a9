// What grew between two V8 heap snapshots (.heapsnapshot, e.g. from bench/attach-scale-bench.mts
// with CB_BENCH_INSPECT=1 CB_BENCH_HEAP_SNAPSHOTS=dir): self sizes summed by node type, and by
// type + name (constructor for objects, a prefix of the text for strings), largest growth first.
//
//   node bench/heap-snapshot-diff.mjs before.heapsnapshot after.heapsnapshot [rows=40]
import { readFileSync } from 'node:fs';

const [a, b, rowsArg] = process.argv.slice(2);
if (!a || !b) {
  console.error('usage: heap-snapshot-diff.mjs before.heapsnapshot after.heapsnapshot [rows]');
  process.exit(2);
}
const rows = Number(rowsArg ?? 40);

function summarise(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const byType = new Map();
  const byName = new Map();
  let total = 0;
  let count = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]];
    const size = snap.nodes[i + iSize];
    let name = snap.strings[snap.nodes[i + iName]] ?? '';
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = `"${name.slice(0, 40).replace(/\s+/g, ' ')}"`;
    else if (name.length > 60) name = `${name.slice(0, 60)}…`;
    total += size;
    count += 1;
    const t = byType.get(type) ?? { size: 0, count: 0 };
    t.size += size;
    t.count += 1;
    byType.set(type, t);
    const key = `${type}\t${type === 'string' ? '(strings)' : name}`;
    const n = byName.get(key) ?? { size: 0, count: 0 };
    n.size += size;
    n.count += 1;
    byName.set(key, n);
  }
  return { total, count, byType, byName };
}

const A = summarise(a);
const B = summarise(b);
const kib = (x) => `${(x / 1024).toFixed(1)} KiB`;
console.log(`total self size: ${kib(A.total)} (${A.count} nodes) -> ${kib(B.total)} (${B.count} nodes): ${kib(B.total - A.total)}`);
const diff = (ma, mb) =>
  [...new Set([...ma.keys(), ...mb.keys()])]
    .map((k) => {
      const x = ma.get(k) ?? { size: 0, count: 0 };
      const y = mb.get(k) ?? { size: 0, count: 0 };
      return { k, d: y.size - x.size, dc: y.count - x.count, after: y.size };
    })
    .sort((p, q) => q.d - p.d);
console.log('\nby node type:');
for (const r of diff(A.byType, B.byType).filter((r) => r.d !== 0)) console.log(`  ${r.k.padEnd(22)} ${kib(r.d).padStart(12)}  (${r.dc >= 0 ? '+' : ''}${r.dc} nodes; ${kib(r.after)} after)`);
console.log(`\nby type and name (top ${rows} growth):`);
for (const r of diff(A.byName, B.byName).slice(0, rows)) console.log(`  ${kib(r.d).padStart(12)}  ${(r.dc >= 0 ? '+' : '') + r.dc} nodes  ${r.k.replace('\t', '  ')}`);
