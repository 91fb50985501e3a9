// RPC client: oslo.messaging RPCClient over the rabbit driver (amqpdriver.AMQPDriverBase._send,
// ReplyWaiter, impl_rabbit topic_send/fanout_send).
//
//  cast       → exchange <control_exchange> (topic), routing key T or T.S, no expiration
//  fanoutCast → exchange <topic>_fanout (fanout), routing key ''
//  call       → like cast plus _msg_id/_reply_q/_timeout, expiration = timeout in ms; the reply
//               queue reply_<uuid4 hex> (x-expires = rabbit_transient_queues_ttl) is declared on
//               first use and consumed for the client's lifetime. `ending: false` heartbeats
//               restart the call-monitor timer (not the overall timeout), the `ending: true` reply
//               ends the call; a failure becomes a RemoteError carrying class/module/kwargs.
// Every publish is confirmed by the broker and waits (bounded) for a reconnect rather than
// dropping the message; exchanges are declared before the first publish on a channel, as kombu.
import type { Channel, ConsumeMessage } from 'amqplib';
import { log, logDropped } from '../log.js';
import { buildRequest, decodeEnvelope, encodeEnvelope } from './envelope.js';
import { deserializeFailure } from './failure.js';
import { deserializeEntity } from './ovo.js';
import { ConnectionClosedError, type AmqpConnection, type ManagedChannel } from './connection.js';
import {
  declareQueue,
  fanoutExchange,
  replyQueue,
  routingKeyFor,
  topicExchange,
  uuidHex,
  DEFAULT_CONTROL_EXCHANGE,
  MESSAGE_PROPERTIES,
  type QueueSpec,
  type Target,
  type TopologyOptions,
} from './topology.js';

export interface RpcClientOptions {
  connection: AmqpConnection;
  /** [DEFAULT] control_exchange; 'openstack'. */
  controlExchange?: string;
  /** rpc_response_timeout in seconds (default 60): call timeout and request expiration. */
  rpcResponseTimeout?: number;
  /** How long a cast waits for the broker (reconnects included) before failing. */
  castTimeoutMs?: number;
  name?: string;
}

export interface CallOptions {
  /** Seconds; default rpc_response_timeout. Also the message expiration. */
  timeout?: number;
  /** Seconds; sent as `_timeout` so the server sends heartbeats every half of it. Default null. */
  callMonitorTimeout?: number | null;
}

/** oslo_messaging.RemoteError, with the failure's fields kept. */
export class RemoteError extends Error {
  readonly className: string;
  readonly module: string;
  readonly remoteMessage: string;
  readonly args: unknown[];
  readonly kwargs: Record<string, unknown>;
  readonly tb: string[];

  constructor(f: { className: string; module: string; message: string; args: unknown[]; kwargs: Record<string, unknown>; tb: string[] }) {
    super(`Remote error: ${f.className} ${f.message}`);
    this.name = 'RemoteError';
    this.className = f.className;
    this.module = f.module;
    this.remoteMessage = f.message;
    this.args = f.args;
    this.kwargs = f.kwargs;
    this.tb = f.tb;
  }
}

/** oslo_messaging.MessagingTimeout */
export class MessagingTimeout extends Error {
  readonly msgId: string;
  constructor(msgId: string) {
    super(`Timed out waiting for a reply to message ID ${msgId}`);
    this.name = 'MessagingTimeout';
    this.msgId = msgId;
  }
}

interface CallWaiter {
  onReply: (inner: Record<string, unknown>) => void;
  fail: (err: Error) => void;
}

export class RpcClient {
  readonly name: string;
  private readonly conn: AmqpConnection;
  private readonly topo: TopologyOptions;
  private readonly rpcResponseTimeout: number;
  private readonly castTimeoutMs: number;
  private publisher: ManagedChannel | null = null;
  private replyChannel: ManagedChannel | null = null;
  private replySpec: QueueSpec | null = null;
  private readonly waiters = new Map<string, CallWaiter>();
  private closed = false;

  constructor(opts: RpcClientOptions) {
    this.conn = opts.connection;
    this.name = opts.name ?? 'rpc-client';
    this.topo = { controlExchange: opts.controlExchange ?? DEFAULT_CONTROL_EXCHANGE, rabbit: this.conn.rabbit };
    this.rpcResponseTimeout = opts.rpcResponseTimeout ?? 60;
    this.castTimeoutMs = opts.castTimeoutMs ?? 60_000;
  }

  /** The reply queue name once the first call declared it. */
  get replyQueueName(): string | null {
    return this.replySpec?.name ?? null;
  }

  private pub(): ManagedChannel {
    if (this.closed) throw new ConnectionClosedError(`${this.name} is closed`);
    if (!this.publisher) this.publisher = this.conn.channel({ name: `${this.name}/publish`, confirm: true });
    return this.publisher;
  }

  /** Cast to a topic (or topic.server) target; a target with fanout=true is a fanout cast. */
  async cast(target: Target, method: string, args: Record<string, unknown>, ctx: Record<string, unknown>, version?: string): Promise<void> {
    if (target.fanout) return this.fanoutCast(target.topic, method, args, ctx, version ?? target.version ?? undefined, target.namespace);
    const inner = buildRequest({ method, args, version: version ?? target.version ?? undefined, namespace: target.namespace ?? null, context: ctx });
    const rk = routingKeyFor(target);
    const ex = topicExchange(this.topo, target.exchange);
    log().debug({ rpc_client: this.name, method, exchange: ex.name, routing_key: rk, unique_id: inner._unique_id }, `CAST ${method} to ${ex.name}/${rk}`);
    await this.pub().publish(ex.name, rk, Buffer.from(encodeEnvelope(inner)), { ...MESSAGE_PROPERTIES, headers: {} }, {
      declare: ex,
      timeoutMs: this.castTimeoutMs,
    });
  }

  /** Fanout cast on exchange `<topic>_fanout`. */
  async fanoutCast(
    topic: string,
    method: string,
    args: Record<string, unknown>,
    ctx: Record<string, unknown>,
    version?: string,
    namespace?: string | null,
  ): Promise<void> {
    const inner = buildRequest({ method, args, version, namespace: namespace ?? null, context: ctx });
    const ex = fanoutExchange(topic);
    log().debug({ rpc_client: this.name, method, exchange: ex.name, unique_id: inner._unique_id }, `CAST ${method} FANOUT topic '${topic}'`);
    await this.pub().publish(ex.name, '', Buffer.from(encodeEnvelope(inner)), { ...MESSAGE_PROPERTIES, headers: {} }, {
      declare: ex,
      timeoutMs: this.castTimeoutMs,
    });
  }

  /** Call and wait for the result (deserializeEntity applied). Throws RemoteError / MessagingTimeout. */
  async call(
    target: Target,
    method: string,
    args: Record<string, unknown>,
    ctx: Record<string, unknown>,
    version?: string,
    opts: CallOptions = {},
  ): Promise<unknown> {
    if (target.fanout) throw new Error('A call cannot be used with fanout');
    const timeout = opts.timeout ?? this.rpcResponseTimeout;
    const cmTimeout = opts.callMonitorTimeout ?? null;
    const timeoutMs = timeout * 1000;
    const started = Date.now();
    const replyQ = await this.ensureReplyQueue(timeoutMs);
    const msgId = uuidHex();
    const inner = buildRequest({
      method,
      args,
      version: version ?? target.version ?? undefined,
      namespace: target.namespace ?? null,
      context: ctx,
      call: { msgId, replyQueue: replyQ, timeout: cmTimeout },
    });
    const rk = routingKeyFor(target);
    const ex = topicExchange(this.topo, target.exchange);

    let finish!: (err: Error | null, value?: unknown) => void;
    const done = new Promise<unknown>((resolve, reject) => {
      finish = (err, value) => (err ? reject(err) : resolve(value));
    });
    let finalReply: unknown = null;
    let overallTimer: NodeJS.Timeout | null = null;
    let cmTimer: NodeJS.Timeout | null = null;
    const cleanup = (): void => {
      this.waiters.delete(msgId);
      if (overallTimer) clearTimeout(overallTimer);
      if (cmTimer) clearTimeout(cmTimer);
    };
    const timedOut = (): void => {
      cleanup();
      finish(new MessagingTimeout(msgId));
    };
    const armCallMonitor = (): void => {
      if (cmTimeout === null || cmTimeout <= 0) return;
      if (cmTimer) clearTimeout(cmTimer);
      cmTimer = setTimeout(timedOut, cmTimeout * 1000);
    };
    this.waiters.set(msgId, {
      onReply: (data) => {
        let reply: unknown = null;
        if (data.failure) {
          try {
            reply = new RemoteError(deserializeFailure(String(data.failure)));
          } catch (err) {
            reply = err instanceof Error ? err : new Error(String(err));
          }
        } else {
          reply = data.result ?? null;
        }
        const ending = data.ending === true;
        if (reply !== null) finalReply = reply;
        else if (!ending) {
          log().debug({ msg_id: msgId }, 'Call monitor heartbeat received; renewing timeout timer');
          armCallMonitor();
        }
        if (ending) {
          cleanup();
          if (finalReply instanceof Error) finish(finalReply);
          else {
            try {
              finish(null, deserializeEntity(finalReply));
            } catch (err) {
              finish(err instanceof Error ? err : new Error(String(err)));
            }
          }
        }
      },
      fail: (err) => {
        cleanup();
        finish(err);
      },
    });

    log().debug({ rpc_client: this.name, method, exchange: ex.name, routing_key: rk, msg_id: msgId }, `CALL msg_id: ${msgId} exchange '${ex.name}' topic '${rk}'`);
    try {
      const remaining = Math.max(1, timeoutMs - (Date.now() - started));
      await this.pub().publish(
        ex.name,
        rk,
        Buffer.from(encodeEnvelope(inner)),
        { ...MESSAGE_PROPERTIES, headers: {}, expiration: String(Math.trunc(timeoutMs)) },
        { declare: ex, timeoutMs: remaining },
      );
    } catch (err) {
      cleanup();
      throw err;
    }
    if (this.waiters.has(msgId)) {
      overallTimer = setTimeout(timedOut, Math.max(0, timeoutMs - (Date.now() - started)));
      armCallMonitor();
    }
    return done;
  }

  private async ensureReplyQueue(timeoutMs: number): Promise<string> {
    if (this.closed) throw new ConnectionClosedError(`${this.name} is closed`);
    if (!this.replyChannel) {
      const spec = replyQueue(this.topo);
      this.replySpec = spec;
      this.replyChannel = this.conn.channel({
        name: `${this.name}/replies`,
        setup: async (ch: Channel) => {
          await declareQueue(ch, spec);
          const args = this.conn.rabbit.enable_cancel_on_failover ? { 'x-cancel-on-ha-failover': true } : undefined;
          await ch.consume(spec.name, (m) => this.onReply(ch, m), { noAck: false, arguments: args });
        },
      });
    }
    await this.replyChannel.waitReady(timeoutMs);
    return (this.replySpec as QueueSpec).name;
  }

  private onReply(ch: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      if (!this.closed) this.replyChannel?.recycle('reply consumer cancelled by the broker');
      return;
    }
    try {
      ch.ack(msg);
    } catch {
      /* channel gone; the reply is redelivered on the next channel */
    }
    let inner: Record<string, unknown>;
    try {
      inner = decodeEnvelope(msg.content);
    } catch (err) {
      log().error({ rpc_client: this.name, bytes: msg.content.length }, `Dropping malformed reply: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}`);
      return;
    }
    const msgId = typeof inner._msg_id === 'string' ? inner._msg_id : null;
    const w = msgId ? this.waiters.get(msgId) : undefined;
    if (!w) {
      log().info({ rpc_client: this.name, msg_id: msgId }, `No calling threads waiting for msg_id : ${msgId}`);
      return;
    }
    w.onReply(inner);
  }

  /** Fails pending calls, closes the channels and deletes the reply queue. The connection stays. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.waiters.values()]) w.fail(new ConnectionClosedError(`${this.name} closed`));
    const ch = this.replyChannel?.channel;
    if (ch && this.replySpec) {
      await ch.deleteQueue(this.replySpec.name).catch(
        logDropped(log(), `deleting reply queue ${this.replySpec.name} at close`, 'the broker removes it once unused (auto-delete)'),
      );
    }
    await this.replyChannel?.close();
    await this.publisher?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// What the volume service sends the scheduler (cinder/scheduler/rpcapi.py, SchedulerAPI).

export const SCHEDULER_TOPIC = 'cinder-scheduler';

export interface CapabilityReport {
  /** 'storage1@lvm' */
  host: string;
  clusterName: string | null;
  capabilities: Record<string, unknown>;
  /** naive ISO string as cinder sends it, e.g. '2026-11-23T19:28:04.787697' */
  timestamp: string;
}

export class SchedulerRpcClient {
  constructor(
    private readonly client: RpcClient,
    /** Topic of the scheduler ('cinder-scheduler'); tests use their own. */
    private readonly topic: string = SCHEDULER_TOPIC,
  ) {}

  /** fanout cast update_service_capabilities v3.3 on exchange cinder-scheduler_fanout. */
  updateServiceCapabilities(ctx: Record<string, unknown>, r: CapabilityReport): Promise<void> {
    return this.client.fanoutCast(
      this.topic,
      'update_service_capabilities',
      { service_name: 'volume', host: r.host, capabilities: r.capabilities, cluster_name: r.clusterName, timestamp: r.timestamp },
      ctx,
      '3.3',
    );
  }

  /** cast notify_service_capabilities v3.5 to topic cinder-scheduler. */
  notifyServiceCapabilities(ctx: Record<string, unknown>, r: CapabilityReport): Promise<void> {
    return this.client.cast(
      { topic: this.topic },
      'notify_service_capabilities',
      { service_name: 'volume', backend: r.host, capabilities: r.capabilities, timestamp: r.timestamp },
      ctx,
      '3.5',
    );
  }
}
