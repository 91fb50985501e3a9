// The Grafana dashboard and the Prometheus alert rules in monitoring/ name only metrics the agent
// exports (a renamed metric would leave a panel empty and an alert silent), and the dashboard is
// JSON Grafana can import.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../../src/metrics.js';
import { repoRoot } from '../../helpers/fixtures.js';

const dir = join(repoRoot, 'monitoring');
const files = ['grafana-dashboard.json', 'alerts.yml'];

async function exported(): Promise<Set<string>> {
  const m = new AgentMetrics();
  const names = new Set<string>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${s}`);
  }
  return names;
}

describe('monitoring/', () => {
  it.each(files)('%s names only metrics the agent exports', async (file) => {
    const text = readFileSync(join(dir, file), 'utf8');
    const named = new Set(text.match(/cinderblock_[a-z0-9_]+/g) ?? []);
    expect(named.size).toBeGreaterThan(3);
    const have = await exported();
    expect([...named].filter((n) => !have.has(n))).toEqual([]);
  });

  it('the dashboard is importable JSON with a query per panel, and the rules file has an expr per alert', () => {
    const d = JSON.parse(readFileSync(join(dir, 'grafana-dashboard.json'), 'utf8')) as { uid: string; panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    expect(d.uid).toBe('cinderblock');
    for (const p of d.panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
    const rules = readFileSync(join(dir, 'alerts.yml'), 'utf8');
    expect((rules.match(/^\s+- alert: /gm) ?? []).length).toBe((rules.match(/^\s+expr: /gm) ?? []).length);
  });

  it('pool capacity comes from the capability report, numbers only', async () => {
    const m = new AgentMetrics();
    m.recordCapabilities('lvm', { pools: [{ pool_name: 'lvm', total_capacity_gb: 100, free_capacity_gb: 'unknown', allocated_capacity_gb: 12, provisioned_capacity_gb: 30 }] });
    const text = await m.registry.metrics();
    expect(text).toContain('cinderblock_pool_capacity_gb{backend="lvm",pool="lvm",kind="total"} 100');
    expect(text).toContain('cinderblock_pool_capacity_gb{backend="lvm",pool="lvm",kind="allocated"} 12');
    expect(text).not.toContain('kind="free"');
  });
});
