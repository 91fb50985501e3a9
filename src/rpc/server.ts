// RPC server: oslo.messaging's RPCServer + RpcAMQPListener + AMQPIncomingMessage on RabbitMQ.
//
//  - consumes T, T.S and T_fanout_<hex> for each target (oslo_messaging/_drivers/impl_rabbit.py, Connection.declare_topic_consumer and declare_fanout_consumer), re-declared and
//    re-consumed after every reconnect or channel error;
//  - a message is acked on receipt, before dispatch (RpcAMQPListener); a failed ack discards it.
//    amqplib only buffers the ack (ack-flush.ts), so handling starts once the ack frame has left
//    the process: a message that then hangs or crashes the agent is not redelivered to the next
//    one (issue 10: it was, and hung every restarted agent until the queue was purged);
//  - poison guard (poison.ts): a delivery the broker marks `redelivered` was given to a consumer
//    that never acked it, i.e. died holding it. Such a message is recorded as started before its
//    handler runs and forgotten when the handler ends, in a small file under `poisonStateDir`
//    (memory only without one). A redelivered message already started and never finished (so,
//    with the original delivery, started twice: POISON_LIMITS.maxStarts) is refused: rejected
//    without requeue, one error line with its method and ids, a failure reply if it is a call.
//    Only redeliveries are recorded, so the normal path never writes to disk;
//  - before anything else looks at a message, admission.ts decodes it and checks it against
//    RPC_LIMITS (limits.ts): a message over a bound, with an envelope version other than 2.0, or
//    otherwise malformed is refused with exactly one log line that never quotes it (the context
//    carries auth_token) and, when it is a call with a usable reply queue, the failure oslo would
//    send (UnsupportedRpcEnvelopeVersion for a bad envelope; real oslo logs and drops those, which
//    leaves the caller waiting out its timeout). A call without a usable _reply_q cannot be
//    answered: logged once and dropped;
//  - `_unique_id` duplicates are dropped (bounded cache, amqp._MsgIdCache);
//  - work in flight is bounded (maxInFlight, oslo executor_thread_pool_size = 64): beyond it a
//    delivery is held *unacked* in a short local queue and the per-consumer prefetch (= the bound)
//    makes the broker stop sending, so nothing unbounded piles up and held messages go back to
//    the queue if the connection drops;
//  - replies go to the default exchange, routing key = _reply_q, mandatory, confirmed; a reply
//    queue that does not exist is retried every 0.25 s for kombu_missing_consumer_retry_timeout
//    (60 s), then remembered as gone (ObsoleteReplyQueuesCache: 200 entries, 60 s) and dropped;
//  - call-monitor: with `_timeout` set, `{"result": null, "failure": null, "ending": false}` every
//    _timeout/2 s until the reply (dispatcher._watchdog);
//  - failures of casts are logged and dropped; the server keeps serving.
// Every dispatch runs inside withRequestScope({request_id, global_request_id}).
import { performance } from 'node:perf_hooks';
import type { Channel, ConsumeMessage } from 'amqplib';
import { log, logDropped, withRequestScope } from '../log.js';
import { CinderError } from '../errors.js';
import { buildReply, encodeEnvelope, type IncomingRequest } from './envelope.js';
import { serializeFailure } from './failure.js';
import { admit, messageKey, type Admission, type Refusal, type ReplyAddress } from './admission.js';
import { framesFlushed } from './ack-flush.js';
import { ACK_FLUSH_TIMEOUT_MS } from './limits.js';
import { PoisonGuard, type PoisonVerdict } from './poison.js';
import { DuplicateMessageCache, RpcDispatcher, type RpcEndpoint } from './dispatcher.js';
import { ConnectionClosedError, PublishTimeout, type AmqpConnection, type ManagedChannel } from './connection.js';
import { declareQueue, listenQueues, uuidHex, DEFAULT_CONTROL_EXCHANGE, MESSAGE_PROPERTIES, type QueueSpec, type Target, type TopologyOptions } from './topology.js';

export interface RpcServerOptions {
  /** Connection the queues are consumed on. */
  connection: AmqpConnection;
  /**
   * Connection replies are published on (default: `connection`). oslo keeps listening and
   * sending on separate connections, so a broker flow-control block on publishing never stalls
   * consumption; pass a second AmqpConnection to get the same.
   */
  publishConnection?: AmqpConnection;
  targets: Target[];
  endpoints: RpcEndpoint[];
  /** [DEFAULT] control_exchange; 'openstack'. */
  controlExchange?: string;
  /** Requests handled at the same time (oslo executor_thread_pool_size, 64). */
  maxInFlight?: number;
  /** How long a reply to a missing reply queue is retried (kombu_missing_consumer_retry_timeout). */
  replyRetryTimeoutMs?: number;
  /** stop(): how long to wait for running handlers. */
  stopTimeoutMs?: number;
  /** `_unique_id`s remembered for duplicate detection (oslo keeps 16 per listener). */
  duplicateCacheSize?: number;
  /** Name used in log lines (and in the poison-record file name: keep it stable across restarts). */
  name?: string;
  /**
   * Directory for the poison-message records (see the header comment); null or absent keeps
   * them in memory, where they do not survive the restart a poison message causes.
   */
  poisonStateDir?: string | null;
}

interface Held {
  ch: Channel;
  msg: ConsumeMessage;
}

/** amqpdriver.ObsoleteReplyQueuesCache: 200 reply queues known to be gone, for 60 s. */
class ObsoleteReplyQueues {
  private readonly entries = new Map<string, number>();
  constructor(
    private readonly size = 200,
    private readonly ttlMs = 60_000,
  ) {}

  has(q: string): boolean {
    const t = this.entries.get(q);
    if (t === undefined) return false;
    if (Date.now() - t > this.ttlMs) {
      this.entries.delete(q);
      return false;
    }
    return true;
  }

  add(q: string): void {
    this.entries.delete(q);
    this.entries.set(q, Date.now());
    while (this.entries.size > this.size) {
      const first = this.entries.keys().next().value as string;
      this.entries.delete(first);
    }
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class RpcServer {
  readonly name: string;
  private readonly conn: AmqpConnection;
  private readonly pubConn: AmqpConnection;
  private readonly dispatcher: RpcDispatcher;
  private readonly topo: TopologyOptions;
  private readonly queues: QueueSpec[];
  private readonly maxInFlight: number;
  private readonly replyRetryTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly dup: DuplicateMessageCache;
  private readonly obsolete = new ObsoleteReplyQueues();
  private readonly poison: PoisonGuard;
  private consumer: ManagedChannel | null = null;
  private replies: ManagedChannel | null = null;
  private readonly consumerTags = new Map<Channel, string[]>();
  private held: Held[] = [];
  private active = 0;
  private readonly running = new Set<Promise<void>>();
  private idleWaiters: Array<() => void> = [];
  private stopping = false;
  private stopped = false;

  constructor(opts: RpcServerOptions) {
    if (opts.targets.length === 0) throw new Error('RpcServer needs at least one target');
    this.conn = opts.connection;
    this.pubConn = opts.publishConnection ?? opts.connection;
    this.name = opts.name ?? `rpc-server(${opts.targets.map((t) => `${t.topic}.${t.server ?? ''}`).join(',')})`;
    this.dispatcher = new RpcDispatcher(opts.endpoints);
    this.topo = { controlExchange: opts.controlExchange ?? DEFAULT_CONTROL_EXCHANGE, rabbit: this.conn.rabbit };
    const byName = new Map<string, QueueSpec>();
    for (const t of opts.targets) {
      for (const q of listenQueues(this.topo, t, uuidHex())) if (!byName.has(q.name)) byName.set(q.name, q);
    }
    this.queues = [...byName.values()];
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 64);
    this.replyRetryTimeoutMs = opts.replyRetryTimeoutMs ?? this.conn.rabbit.kombu_missing_consumer_retry_timeout * 1000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 60_000;
    this.dup = new DuplicateMessageCache(opts.duplicateCacheSize ?? 256);
    this.poison = new PoisonGuard({ dir: opts.poisonStateDir ?? null, name: this.name });
  }

  /** Names of the queues this server consumes (fanout names include their random suffix). */
  get queueNames(): string[] {
    return this.queues.map((q) => q.name);
  }

  get queueSpecs(): readonly QueueSpec[] {
    return this.queues;
  }

  /** Requests being handled right now. */
  get inFlight(): number {
    return this.active;
  }

  /** Deliveries held unacked because maxInFlight is reached. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Connects if needed, declares everything and starts consuming. */
  async start(timeoutMs?: number): Promise<void> {
    if (this.stopped || this.stopping) throw new Error(`${this.name} was stopped`);
    if (this.consumer) return;
    const prefetch = this.conn.rabbit.rabbit_qos_prefetch_count > 0 ? Math.min(this.conn.rabbit.rabbit_qos_prefetch_count, this.maxInFlight) : this.maxInFlight;
    this.replies = this.pubConn.channel({ name: `${this.name}/replies`, confirm: true });
    this.consumer = this.conn.channel({ name: `${this.name}/consumer`, prefetch, setup: (ch) => this.setup(ch) });
    this.consumer.on('lost', (ch: Channel) => {
      this.consumerTags.delete(ch);
      // held deliveries of a dead channel will be redelivered by the broker
      this.held = this.held.filter((h) => h.ch !== ch);
    });
    await this.conn.start(timeoutMs);
    if (this.pubConn !== this.conn) await this.pubConn.start(timeoutMs);
    await this.consumer.waitReady(timeoutMs);
    await this.replies.waitReady(timeoutMs);
    log().info({ rpc_server: this.name, queues: this.queueNames }, `RPC server ${this.name} consuming ${this.queueNames.join(', ')}`);
  }

  private async setup(ch: Channel): Promise<void> {
    const tags: string[] = [];
    for (const q of this.queues) await declareQueue(ch, q);
    if (this.stopping) return;
    const consumeArgs = this.conn.rabbit.enable_cancel_on_failover ? { 'x-cancel-on-ha-failover': true } : undefined;
    for (const q of this.queues) {
      const ok = await ch.consume(q.name, (msg) => this.onDelivery(ch, q, msg), { noAck: false, arguments: consumeArgs });
      tags.push(ok.consumerTag);
    }
    this.consumerTags.set(ch, tags);
    log().debug({ rpc_server: this.name }, 'RPC server queues declared and consumed');
  }

  private onDelivery(ch: Channel, q: QueueSpec, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // basic.cancel from the broker: queue deleted, or HA failover. Declare it again and resume.
      if (this.stopping) return;
      log().warn({ rpc_server: this.name, queue: q.name }, `Consumer of ${q.name} cancelled by the broker; re-declaring`);
      this.consumer?.recycle(`consumer of ${q.name} cancelled by the broker`);
      return;
    }
    if (this.stopping) return; // unacked: returns to the queue when the channel closes
    if (this.active < this.maxInFlight) this.begin(ch, msg);
    else this.held.push({ ch, msg });
  }

  private pump(): void {
    while (!this.stopping && this.active < this.maxInFlight && this.held.length > 0) {
      const h = this.held.shift() as Held;
      if (this.consumer?.channel !== h.ch) continue; // stale channel: the broker redelivers it
      this.begin(h.ch, h.msg);
    }
    if (this.active === 0) {
      const ws = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of ws) w();
    }
  }

  private begin(ch: Channel, msg: ConsumeMessage): void {
    this.active++;
    const p: Promise<void> = this.receive(ch, msg)
      .catch((err: unknown) => {
        log().error({ rpc_server: this.name, err }, `Unexpected error while handling an RPC message`);
      })
      .finally(() => {
        this.active--;
        this.running.delete(p);
        this.pump();
      });
    this.running.add(p);
  }

  /** One delivery, from the decision to ack it to the reply. */
  private async receive(ch: Channel, msg: ConsumeMessage): Promise<void> {
    const where = { exchange: msg.fields.exchange, routing_key: msg.fields.routingKey };
    let adm: Admission | null = null;
    let poisonKey: string | null = null;
    if (msg.fields.redelivered) {
      // It may be what took the previous consumer down: decide before acking, so that a refused
      // one is rejected rather than acked.
      adm = admit(msg.content);
      poisonKey = messageKey(adm, msg.content);
      const verdict = this.poison.check(poisonKey);
      if (verdict.refuse) {
        await this.refusePoison(ch, msg, adm, poisonKey, verdict, where);
        return;
      }
    }
    try {
      ch.ack(msg);
    } catch (err) {
      log().warn({ rpc_server: this.name }, `Discarding RPC request due to failed acknowledge: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // The ack is only buffered so far: let it leave the process before anything can block the
    // loop, or a message that hangs the agent is redelivered to every restarted one.
    if (!(await framesFlushed(ch, ACK_FLUSH_TIMEOUT_MS))) {
      const gone = this.consumer?.channel !== ch;
      log().warn(
        { rpc_server: this.name, ...where },
        gone
          ? 'Discarding RPC request: the channel closed before its acknowledge was sent (the broker redelivers it)'
          : `RPC acknowledge still buffered after ${ACK_FLUSH_TIMEOUT_MS} ms (socket congested); handling the request anyway`,
      );
      if (gone) return;
    }
    adm ??= admit(msg.content);
    if (!adm.ok) {
      await this.refuse(adm.refusal, where, msg.content.length);
      return;
    }
    const req = adm.req;
    if (this.dup.has(req.uniqueId)) {
      log().warn({ rpc_server: this.name, ...where, unique_id: req.uniqueId, msg_id: req.msgId }, `ignoring duplicate message ${req.uniqueId}`);
      return;
    }
    this.dup.add(req.uniqueId);
    if (poisonKey !== null) this.poison.started(poisonKey, { method: req.method, msgId: req.msgId, uniqueId: req.uniqueId });
    try {
      await this.handle(req, where);
    } finally {
      if (poisonKey !== null) this.poison.finished(poisonKey);
    }
  }

  /** admission.ts refused the message: one log line (never its content), a failure to a waiting caller. */
  private async refuse(r: Refusal, where: Record<string, string>, bytes: number): Promise<void> {
    const m = r.method ? ` ${r.method}` : '';
    let text: string;
    switch (r.kind) {
      case 'unreadable':
        text = `Dropping malformed RPC message: ${r.reason}`;
        break;
      case 'malformed':
        text = `Dropping malformed RPC request${m}: ${r.reason}${r.address ? ' (the caller gets a failure)' : ''}`;
        break;
      case 'too-large':
        text =
          `Refusing RPC request${m}: ${r.reason}; ${r.address ? 'the caller gets an InvalidInput failure' : 'dropped (no reply queue to answer)'}. ` +
          'If a legitimate client sent it, the bound in src/rpc/limits.ts is too small: report it';
        break;
      case 'envelope-version':
        text =
          `Refusing RPC message${m}: ${r.reason}; ${r.address ? 'the caller gets UnsupportedRpcEnvelopeVersion' : 'dropped (no reply queue to answer)'}. ` +
          'The sender uses a newer oslo.messaging wire format than this agent understands';
        break;
      case 'no-reply-queue':
        text = `Dropping RPC call${m}: ${r.reason}`;
        break;
    }
    const ids = { request_id: r.requestId, global_request_id: r.globalRequestId };
    withRequestScope(ids, () => {
      log().error({ rpc_server: this.name, ...where, bytes, method: r.method, msg_id: r.msgId, unique_id: r.uniqueId, refused: r.kind }, text);
    });
    if (r.address) await this.replyFailure(r.address, r.error);
  }

  /** A redelivered message that was started and never finished, again: reject it for good. */
  private async refusePoison(ch: Channel, msg: ConsumeMessage, adm: Admission, key: string, verdict: PoisonVerdict, where: Record<string, string>): Promise<void> {
    let rejected = true;
    try {
      ch.nack(msg, false, false);
    } catch {
      rejected = false; // channel gone: the broker gives it out again, and it is refused again
    }
    if (rejected) this.poison.forget(key);
    const r = adm.ok ? null : adm.refusal;
    const req = adm.ok ? adm.req : null;
    const method = req?.method ?? r?.method ?? null;
    const msgId = req?.msgId ?? r?.msgId ?? null;
    const uniqueId = req?.uniqueId ?? r?.uniqueId ?? null;
    const address: ReplyAddress | null = req ? (req.msgId && req.replyQueue ? { msgId: req.msgId, replyQueue: req.replyQueue } : null) : (r?.address ?? null);
    const kind = msgId ? 'call' : 'cast';
    const ids = req ? { request_id: str(req.context.request_id), global_request_id: str(req.context.global_request_id) } : { request_id: r?.requestId ?? null, global_request_id: r?.globalRequestId ?? null };
    const last = verdict.record?.last_started ?? 'unknown';
    withRequestScope(ids, () => {
      log().error(
        { rpc_server: this.name, ...where, method, msg_id: msgId, unique_id: uniqueId, attempts: verdict.attempts, last_started: last, poison_file: this.poison.file },
        `Refusing redelivered RPC ${kind} ${method ?? '(unknown method)'}: it was started ${verdict.attempts} times (last at ${last}) and never finished, ` +
          `so it most likely hung or crashed the agent. Rejected without requeue${address ? '; the caller gets a failure' : ''}. ` +
          `Look in the log before the last restart for msg_id ${msgId ?? '-'} / unique_id ${uniqueId ?? '-'} to see what it was doing.`,
      );
    });
    if (address) {
      const err = new Error(
        `RPC request${method ? ` ${method}` : ''} refused: it was started ${verdict.attempts} times without finishing (the volume service hung or crashed while handling it); see the volume service's log`,
      );
      await this.replyFailure(address, err);
    }
  }

  private async replyFailure(address: ReplyAddress, err: Error): Promise<void> {
    const reply = encodeEnvelope(buildReply({ msgId: address.msgId, result: null, failure: serializeFailure(err), ending: true }));
    // the caller then waits out its own timeout, as with a cinder-volume that cannot reply
    await this.sendReply(address.msgId, address.replyQueue, reply).catch(
      logDropped(log(), `sending the failure reply of message ${address.msgId} to ${address.replyQueue}`, 'the caller gets no reply and times out'),
    );
  }

  private async handle(req: IncomingRequest, where: Record<string, string>): Promise<void> {
    const ids = { request_id: str(req.context.request_id), global_request_id: str(req.context.global_request_id) };
    await withRequestScope(ids, async () => {
      const kind = req.msgId ? 'call' : 'cast';
      const t0 = performance.now();
      log().info(
        { rpc_server: this.name, method: req.method, kind, version: req.version, msg_id: req.msgId, ...where },
        `RPC ${kind} ${req.method} started`,
      );
      const stopMonitor = this.startCallMonitor(req);
      let result: unknown = null;
      let caught: unknown = null;
      try {
        result = await this.dispatcher.dispatch(req);
      } catch (err) {
        caught = err;
      } finally {
        stopMonitor();
      }
      let reply: string | null = null;
      if (req.msgId && req.replyQueue) {
        if (caught === null) {
          try {
            reply = encodeEnvelope(buildReply({ msgId: req.msgId, result, failure: null, ending: true }));
          } catch (err) {
            caught = err; // the handler returned something that cannot be sent
          }
        }
        if (caught !== null) {
          let failure: string;
          try {
            failure = serializeFailure(caught);
          } catch {
            // e.g. kwargs that cannot be written as JSON: still answer, with the message only
            failure = serializeFailure(new Error(caught instanceof Error ? caught.message : String(caught)));
          }
          reply = encodeEnvelope(buildReply({ msgId: req.msgId, result: null, failure, ending: true }));
        }
      }
      const durationMs = Math.round(performance.now() - t0);
      if (caught !== null) {
        const cls = caught instanceof CinderError ? `${caught.module}.${caught.className}` : caught instanceof Error ? caught.name : typeof caught;
        log().error(
          { rpc_server: this.name, method: req.method, kind, duration_ms: durationMs, outcome: 'failed', error_class: cls, err: caught },
          `RPC ${kind} ${req.method} failed after ${durationMs} ms: ${cls}: ${caught instanceof Error ? caught.message : String(caught)}${kind === 'cast' ? ' (cast dropped)' : ''}`,
        );
      }
      let replyOutcome = 'none';
      if (reply && req.msgId && req.replyQueue) replyOutcome = await this.sendReply(req.msgId, req.replyQueue, reply);
      log().info(
        {
          rpc_server: this.name,
          method: req.method,
          kind,
          duration_ms: Math.round(performance.now() - t0),
          outcome: caught === null ? 'ok' : 'failed',
          reply: replyOutcome,
        },
        `RPC ${kind} ${req.method} finished in ${Math.round(performance.now() - t0)} ms: ${caught === null ? 'ok' : 'failed'}`,
      );
    });
  }

  /** dispatcher._watchdog: heartbeats while a call with `_timeout` runs. */
  private startCallMonitor(req: IncomingRequest): () => void {
    if (!req.timeout || !req.msgId || !req.replyQueue) return () => undefined;
    const clientTimeout = Math.trunc(req.timeout);
    const interval = clientTimeout / 2;
    if (interval < 1) {
      log().warn({ rpc_server: this.name, method: req.method }, `Client provided an invalid timeout value of ${req.timeout}`);
      return () => undefined;
    }
    const msgId = req.msgId;
    const replyQ = req.replyQueue;
    let stopped = false;
    let busy = false;
    const timer = setInterval(() => {
      if (stopped || busy) return;
      busy = true;
      log().debug({ method: req.method, interval }, `Sending call-monitor heartbeat for active call to ${req.method} (interval=${Math.trunc(interval)})`);
      void this.sendHeartbeat(msgId, replyQ, interval * 1000)
        .then((ok) => {
          if (!ok) stop();
        })
        .finally(() => {
          busy = false;
        });
    }, interval * 1000);
    const stop = (): void => {
      stopped = true;
      clearInterval(timer);
    };
    return stop;
  }

  private async sendHeartbeat(msgId: string, replyQ: string, timeoutMs: number): Promise<boolean> {
    if (this.obsolete.has(replyQ) || !this.replies) return false;
    const body = Buffer.from(encodeEnvelope(buildReply({ msgId, result: null, failure: null, ending: false })));
    try {
      const outcome = await this.replies.publish('', replyQ, body, { ...MESSAGE_PROPERTIES, headers: {} }, { mandatory: true, timeoutMs });
      if (outcome === 'returned') {
        log().debug({ msg_id: msgId, reply_q: replyQ }, 'Call-monitor heartbeat failed: Heartbeat send failed. Missing queue');
        return false;
      }
      return true;
    } catch (err) {
      log().debug({ msg_id: msgId, reply_q: replyQ }, `Call-monitor heartbeat failed: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }

  /** AMQPIncomingMessage.reply: retried while the reply queue is missing, up to the timeout. */
  private async sendReply(msgId: string, replyQ: string, reply: string): Promise<string> {
    if (this.obsolete.has(replyQ)) {
      log().warn({ reply_q: replyQ, msg_id: msgId }, `${replyQ} doesn't exist, drop reply to ${msgId}`);
      return 'dropped';
    }
    const publisher = this.replies;
    if (!publisher) return 'dropped';
    const body = Buffer.from(reply);
    const duration = this.replyRetryTimeoutMs;
    const deadline = Date.now() + duration;
    const seconds = Math.round(duration / 1000);
    let lastWasReturn = false;
    for (;;) {
      const remaining = deadline - Date.now();
      let outcome: 'routed' | 'returned' | null = null;
      let error: unknown = null;
      try {
        // the last attempt still gets a moment for the broker's confirmation
        outcome = await publisher.publish('', replyQ, body, { ...MESSAGE_PROPERTIES, headers: {} }, { mandatory: true, timeoutMs: Math.max(remaining, 1000) });
      } catch (err) {
        error = err;
      }
      if (outcome === 'returned') lastWasReturn = true;
      else if (error !== null && !(error instanceof PublishTimeout && lastWasReturn)) lastWasReturn = false;
      if (outcome === 'routed') {
        log().debug({ msg_id: msgId, reply_q: replyQ }, `sent reply msg_id: ${msgId} reply queue: ${replyQ}`);
        return 'sent';
      }
      if (Date.now() >= deadline || error instanceof PublishTimeout || error instanceof ConnectionClosedError) {
        this.obsolete.add(replyQ);
        if (outcome === 'returned' || lastWasReturn) {
          log().error(
            { msg_id: msgId, reply_q: replyQ },
            `The reply ${msgId} failed to send after ${seconds} seconds due to a missing queue (${replyQ}). Abandoning...`,
          );
        } else {
          log().error(
            { msg_id: msgId, reply_q: replyQ },
            `The reply ${msgId} failed to send after ${seconds} seconds due to a broker issue (${error instanceof Error ? error.message : String(error)}). Abandoning...`,
          );
        }
        log().warn({ reply_q: replyQ, msg_id: msgId }, `${replyQ} doesn't exist, drop reply to ${msgId}`);
        return 'dropped';
      }
      log().debug(
        { msg_id: msgId, reply_q: replyQ },
        outcome === 'returned'
          ? `The reply ${msgId} could not be sent due to a missing queue (${replyQ}). Retrying...`
          : `The reply ${msgId} could not be sent due to a broker issue (${error instanceof Error ? error.message : String(error)}). Retrying...`,
      );
      await sleep(250);
    }
  }

  /**
   * Graceful stop (SIGTERM): cancel the consumers, give held (never started) deliveries back to
   * the broker, wait up to timeoutMs for running handlers and their replies, delete the fanout
   * queues (oslo's Connection.close does), close the channels. The connection stays open.
   */
  async stop(timeoutMs = this.stopTimeoutMs): Promise<void> {
    if (this.stopping) {
      while (!this.stopped) await sleep(50);
      return;
    }
    this.stopping = true;
    const consumer = this.consumer;
    const ch = consumer?.channel ?? null;
    if (ch) {
      for (const tag of this.consumerTags.get(ch) ?? []) {
        try {
          await ch.cancel(tag);
        } catch {
          /* channel already gone */
        }
      }
    }
    for (const h of this.held) {
      try {
        h.ch.nack(h.msg, false, true);
      } catch {
        /* channel gone: the broker requeues it anyway */
      }
    }
    this.held = [];
    if (this.active > 0) {
      log().info({ rpc_server: this.name, in_flight: this.active }, `Waiting up to ${Math.round(timeoutMs / 1000)} s for ${this.active} running RPC handler(s)`);
      const idle = new Promise<void>((r) => this.idleWaiters.push(r));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        idle.then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), timeoutMs);
        }),
      ]);
      if (timer) clearTimeout(timer);
      if (timedOut) log().warn({ rpc_server: this.name, in_flight: this.active }, `${this.active} RPC handler(s) still running at stop; abandoning them`);
    }
    const live = consumer?.channel ?? null;
    if (live) {
      for (const q of this.queues.filter((x) => x.kind === 'fanout')) {
        await live.deleteQueue(q.name).catch(
          logDropped(log(), `deleting fanout queue ${q.name} at stop`, 'the broker drops it when its auto-delete or expiry applies'),
        );
      }
    }
    this.stopped = true;
    await consumer?.close();
    await this.replies?.close();
    log().info({ rpc_server: this.name }, `RPC server ${this.name} stopped`);
  }
}
