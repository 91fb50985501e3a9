// Prometheus metrics for operators: what the agent is doing (RPCs by method and outcome, their
// latency, work in flight), whether it is connected, and how fresh its heartbeat is. Served on
// [cinderblock] metrics_listen (127.0.0.1:9648 by default; empty disables it).
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly rpcRequests = new Counter({
    name: 'cinderblock_rpc_requests_total',
    help: 'RPC requests handled, by method and outcome (ok, error, dropped)',
    labelNames: ['backend', 'method', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly rpcDuration = new Histogram({
    name: 'cinderblock_rpc_duration_seconds',
    help: 'Time from receipt to reply of an RPC request',
    labelNames: ['backend', 'method'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
    registers: [this.registry],
  });
  readonly rpcInFlight = new Gauge({
    name: 'cinderblock_rpc_in_flight',
    help: 'RPC requests being handled now',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });
  readonly brokerConnected = new Gauge({
    name: 'cinderblock_broker_connected',
    help: '1 while connected to the message broker',
    registers: [this.registry],
  });
  readonly heartbeatTimestamp = new Gauge({
    name: 'cinderblock_heartbeat_timestamp_seconds',
    help: 'Unix time of the last services-row heartbeat written, by backend',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });
  readonly driverInitialized = new Gauge({
    name: 'cinderblock_driver_initialized',
    help: '1 when the backend driver is set up and the service reports itself up',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });

  readonly auditFindings = new Gauge({
    name: 'cinderblock_audit_findings',
    help: 'Findings of the last export audit, by class (mapping-without-attachment is the bug 2004555 class); 0 when clean',
    labelNames: ['backend', 'class'] as const,
    registers: [this.registry],
  });
  readonly auditTimestamp = new Gauge({
    name: 'cinderblock_audit_timestamp_seconds',
    help: 'Unix time the last export audit finished, by backend',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });

  readonly poolCapacityGb = new Gauge({
    name: 'cinderblock_pool_capacity_gb',
    help: 'Pool capacity as last reported to the scheduler, GiB: total, free, allocated (cinder volumes) and provisioned',
    labelNames: ['backend', 'pool', 'kind'] as const,
    registers: [this.registry],
  });

  readonly imageBytes = new Counter({
    name: 'cinderblock_image_bytes_total',
    help: 'Image data moved between Glance and volumes, by direction (download, upload); its rate is the transfer speed',
    labelNames: ['backend', 'direction'] as const,
    registers: [this.registry],
  });
  readonly imageVolumeCache = new Counter({
    name: 'cinderblock_image_volume_cache_total',
    help: 'Image-volume cache lookups by outcome (hit, miss) and evictions',
    labelNames: ['backend', 'result'] as const,
    registers: [this.registry],
  });

  /** The pools of a capability report (numbers only: 'infinite'/'unknown' are left out). */
  recordCapabilities(backend: string, capabilities: Record<string, unknown>): void {
    const pools = Array.isArray(capabilities.pools) ? (capabilities.pools as Array<Record<string, unknown>>) : [];
    for (const p of pools) {
      const pool = String(p.pool_name ?? backend);
      for (const [kind, key] of [['total', 'total_capacity_gb'], ['free', 'free_capacity_gb'], ['allocated', 'allocated_capacity_gb'], ['provisioned', 'provisioned_capacity_gb']] as const) {
        const v = p[key];
        if (typeof v === 'number' && Number.isFinite(v)) this.poolCapacityGb.set({ backend, pool, kind }, v);
      }
    }
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'cinderblock_' });
  }

  /** Call at the start of an RPC; call the returned function with the outcome when it ends. */
  rpcStarted(backend: string, method: string): (outcome: 'ok' | 'error' | 'dropped') => void {
    const end = this.rpcDuration.startTimer({ backend, method });
    this.rpcInFlight.inc({ backend });
    return (outcome) => {
      end();
      this.rpcInFlight.dec({ backend });
      this.rpcRequests.inc({ backend, method, outcome });
    };
  }
}

/** Serves GET /metrics on host:port. Resolves once listening. */
export async function serveMetrics(metrics: AgentMetrics, listen: string): Promise<Server> {
  const idx = listen.lastIndexOf(':');
  const host = listen.slice(0, idx).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(listen.slice(idx + 1));
  if (idx < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`[cinderblock] metrics_listen = ${listen} is not host:port`);
  }
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404).end('see /metrics\n');
      return;
    }
    metrics.registry
      .metrics()
      .then((body) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(body))
      .catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return server;
}
