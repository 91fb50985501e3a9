// The AMQP connection, kept alive the way oslo.messaging's rabbit driver (kombu) keeps its own:
//  - hosts of the transport_url tried in round-robin (kombu_failover_strategy; 'shuffle' picks at
//    random), the host list shuffled once at start when there are several (impl_rabbit does that);
//  - AMQP heartbeat negotiated from heartbeat_timeout_threshold (0 disables it);
//  - after a failed attempt on every host, sleep rabbit_retry_interval, +rabbit_retry_backoff per
//    round, at most rabbit_interval_max; after losing an established connection, wait
//    kombu_reconnect_delay and retry the same host first;
//  - channels are "managed": after a reconnect (or a channel-level error) each one is re-created and
//    its setup function (exchange/queue/binding declarations, consumers) runs again;
//  - publishing waits, bounded by the caller's deadline, for a usable channel instead of dropping;
//    publishing channels are confirm channels (kombu confirm_publish=True) and report messages the
//    broker returned as unroutable (mandatory replies to a vanished reply queue).
// Log lines name host:port and vhost, never the credentials.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type Options } from 'amqplib';
import { log, logDropped } from '../log.js';
import {
  brokerEndpoints,
  hasMixedCredentials,
  parseTransportUrl,
  resolveRabbitOptions,
  type BrokerEndpoint,
  type RabbitOptions,
  type TransportUrl,
} from './transport-url.js';
import { declareExchange, type ExchangeSpec } from './topology.js';

export interface AmqpConnectionOptions {
  /** [oslo_messaging_rabbit] options from the config file; the URL query overrides them. */
  rabbit?: Partial<RabbitOptions>;
  /** connection_name client property; default "<argv1 basename>:<pid>:<uuid>" like oslo. */
  connectionName?: string;
  /** TCP connect + AMQP handshake timeout (kombu connect_timeout is 5 s). */
  connectTimeoutMs?: number;
  /** Shuffle the host list once at start when there are several (oslo does). Default true. */
  shuffleHosts?: boolean;
}

export interface EndpointInfo {
  host: string;
  port: number;
  vhost: string;
  /** "host:port" */
  label: string;
}

export class PublishTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no usable AMQP channel within ${Math.round(ms)} ms (broker unreachable?)`);
    this.name = 'PublishTimeout';
  }
}

export class PublishError extends Error {
  readonly code: number | undefined;
  constructor(message: string, code?: number) {
    super(message);
    this.name = 'PublishError';
    this.code = code;
  }
}

export class ConnectionClosedError extends Error {
  constructor(message = 'AMQP connection manager is closed') {
    super(message);
    this.name = 'ConnectionClosedError';
  }
}

/** Result of a confirmed publish: 'routed' or 'returned' (mandatory message with no queue). */
export type PublishOutcome = 'routed' | 'returned';

export interface PublishOptions {
  mandatory?: boolean;
  /** Declare this exchange (once per channel) before publishing, as kombu's _publish does. */
  declare?: ExchangeSpec | null;
  /** Give up waiting for a channel / confirmation after this long. */
  timeoutMs: number;
}

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
}

/** Interruptible sleep. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function errText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function errCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'number' ? c : undefined;
}

function shuffled<T>(a: T[]): T[] {
  const out = [...a];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

export class AmqpConnection extends EventEmitter {
  readonly url: TransportUrl;
  readonly rabbit: RabbitOptions;
  readonly endpoints: readonly BrokerEndpoint[];
  private readonly order: BrokerEndpoint[];
  private readonly connectionName: string;
  private readonly connectTimeoutMs: number;
  private idx = 0;
  private model: ChannelModel | null = null;
  private current: BrokerEndpoint | null = null;
  private closing = false;
  private readonly abort = new AbortController();
  private loopPromise: Promise<void> | null = null;
  private readonly connWaiters = new Set<Waiter<ChannelModel>>();
  private readonly channels = new Set<ManagedChannel>();
  private generation = 0;

  constructor(url: string | TransportUrl, opts: AmqpConnectionOptions = {}) {
    super();
    this.url = typeof url === 'string' ? parseTransportUrl(url) : url;
    this.rabbit = resolveRabbitOptions(this.url, opts.rabbit ?? {});
    this.endpoints = brokerEndpoints(this.url);
    this.order = opts.shuffleHosts === false || this.endpoints.length < 2 ? [...this.endpoints] : shuffled([...this.endpoints]);
    const prog = path.basename(process.argv[1] ?? 'cinderblock');
    this.connectionName = opts.connectionName ?? `${prog}:${process.pid}:${randomUUID()}`;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    if (hasMixedCredentials(this.url)) {
      log().warn(
        { transport_url: this.url.redacted },
        'All hosts must be set with username/password or not at the same time; hosts without credentials use guest/guest',
      );
    }
  }

  /** Starts connecting (retrying forever, like oslo) and resolves once connected the first time. */
  async start(timeoutMs?: number): Promise<void> {
    if (this.closing) throw new ConnectionClosedError();
    this.kick();
    await this.waitForConnection(timeoutMs);
  }

  /** Starts the connect loop if it is not running yet (does not wait). */
  private kick(): void {
    if (this.loopPromise || this.closing) return;
    this.loopPromise = this.loop().catch((err: unknown) => {
      log().error({ err }, 'AMQP connection loop crashed');
    });
  }

  get connected(): boolean {
    return this.model !== null;
  }

  get endpoint(): EndpointInfo | null {
    const c = this.current;
    return c && this.model ? { host: c.hostname, port: c.port, vhost: c.vhost, label: c.label } : null;
  }

  /** Connection generation: increments on every successful (re)connect. */
  get connectionGeneration(): number {
    return this.generation;
  }

  waitForConnection(timeoutMs?: number): Promise<ChannelModel> {
    if (this.closing) return Promise.reject(new ConnectionClosedError());
    if (this.model) return Promise.resolve(this.model);
    return new Promise<ChannelModel>((resolve, reject) => {
      const w: Waiter<ChannelModel> = { resolve, reject, timer: null };
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          this.connWaiters.delete(w);
          reject(new PublishTimeout('waiting for the AMQP connection', timeoutMs));
        }, Math.max(0, timeoutMs));
      }
      this.connWaiters.add(w);
    });
  }

  /** A channel that is re-created (and its setup re-run) after every reconnect or channel error. */
  channel(opts: ManagedChannelOptions): ManagedChannel {
    if (this.closing) throw new ConnectionClosedError();
    const mc = new ManagedChannel(this, opts);
    this.channels.add(mc);
    if (this.model) mc.open(this.model, this.generation);
    else this.kick(); // first use connects
    return mc;
  }

  /** @internal */
  forget(mc: ManagedChannel): void {
    this.channels.delete(mc);
  }

  /** @internal current model if `generation` is still current */
  liveModel(generation: number): ChannelModel | null {
    return this.model && generation === this.generation ? this.model : null;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.abort.abort();
    for (const w of this.connWaiters) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new ConnectionClosedError());
    }
    this.connWaiters.clear();
    await Promise.allSettled([...this.channels].map((c) => c.close()));
    const m = this.model;
    this.model = null;
    if (m) {
      try {
        await m.close();
      } catch {
        /* already gone */
      }
    }
    await this.loopPromise;
  }

  // -------------------------------------------------------------------------------------------

  private nextIndex(): void {
    if (this.order.length < 2) return;
    if (this.rabbit.kombu_failover_strategy === 'shuffle') {
      let j = this.idx;
      while (j === this.idx) j = Math.floor(Math.random() * this.order.length);
      this.idx = j;
    } else {
      this.idx = (this.idx + 1) % this.order.length;
    }
  }

  /** kombu retry_over_time interval for the n-th full round of failed attempts. */
  retryInterval(round: number): number {
    const r = this.rabbit;
    const start = r.rabbit_retry_interval || 1;
    return Math.min(start + round * r.rabbit_retry_backoff, Math.max(r.rabbit_interval_max, start));
  }

  private async loop(): Promise<void> {
    let round = 0;
    let failedInRound = 0;
    while (!this.closing) {
      const ep = this.order[this.idx] as BrokerEndpoint;
      let model: ChannelModel;
      try {
        model = await this.connectOnce(ep);
      } catch (err) {
        if (this.closing) break;
        failedInRound++;
        this.nextIndex();
        if (failedInRound >= this.order.length) {
          failedInRound = 0;
          const interval = this.retryInterval(round++);
          log().error(
            { amqp_host: ep.label, vhost: ep.vhost },
            `AMQP server on ${ep.label} is unreachable: ${errText(err)}. Trying again in ${interval} seconds.`,
          );
          await sleep(interval * 1000, this.abort.signal);
        } else {
          log().error(
            { amqp_host: ep.label, vhost: ep.vhost },
            `AMQP server on ${ep.label} is unreachable: ${errText(err)}. Trying the next host.`,
          );
        }
        continue;
      }
      if (this.closing) {
        await model.close().catch(logDropped(log(), `closing the connection to ${ep.label} opened while closing`, 'the socket is gone with it; nothing uses it'));
        break;
      }
      round = 0;
      failedInRound = 0;
      const closed = new Promise<Error | null>((resolve) => {
        model.once('close', (err?: unknown) => resolve(err ? (err instanceof Error ? err : new Error(String(err))) : null));
      });
      model.on('error', (err: unknown) => {
        log().debug({ amqp_host: ep.label, err: errText(err) }, 'AMQP connection error');
      });
      model.on('blocked', (reason: unknown) => {
        log().error({ amqp_host: ep.label }, `The broker has blocked the connection: ${String(reason)}`);
      });
      model.on('unblocked', () => log().info({ amqp_host: ep.label }, 'The broker has unblocked the connection'));
      this.model = model;
      this.current = ep;
      this.generation++;
      const info: EndpointInfo = { host: ep.hostname, port: ep.port, vhost: ep.vhost, label: ep.label };
      log().info({ amqp_host: ep.label, vhost: ep.vhost }, `Connected to AMQP server on ${ep.label} (vhost ${ep.vhost})`);
      for (const w of this.connWaiters) {
        if (w.timer) clearTimeout(w.timer);
        w.resolve(model);
      }
      this.connWaiters.clear();
      for (const mc of this.channels) mc.open(model, this.generation);
      this.emit('connected', info);

      const err = await closed;
      if (this.model === model) this.model = null;
      for (const mc of this.channels) mc.connectionLost();
      if (this.closing) break;
      const delay = this.rabbit.kombu_reconnect_delay;
      log().error(
        { amqp_host: ep.label, vhost: ep.vhost },
        `Lost the connection to AMQP server on ${ep.label}: ${err ? errText(err) : 'closed'}. Reconnecting in ${delay} seconds.`,
      );
      this.emit('disconnected', { ...info, error: err ? errText(err) : null });
      await sleep(delay * 1000, this.abort.signal);
    }
  }

  private async connectOnce(ep: BrokerEndpoint): Promise<ChannelModel> {
    const r = this.rabbit;
    const socketOptions: Record<string, unknown> = {
      timeout: this.connectTimeoutMs,
      noDelay: true,
      clientProperties: { connection_name: this.connectionName },
    };
    switch (r.rabbit_login_method) {
      case 'PLAIN':
        socketOptions.credentials = amqp.credentials.plain(ep.username, ep.password);
        break;
      case 'EXTERNAL':
        socketOptions.credentials = amqp.credentials.external();
        break;
      default:
        socketOptions.credentials = amqp.credentials.amqplain(ep.username, ep.password);
    }
    if (r.ssl) Object.assign(socketOptions, tlsOptions(r, ep.hostname));
    const connect: Options.Connect = {
      protocol: r.ssl ? 'amqps' : 'amqp',
      hostname: ep.hostname,
      port: ep.port,
      username: ep.username,
      password: ep.password,
      vhost: ep.vhost,
      heartbeat: Math.max(0, r.heartbeat_timeout_threshold),
      frameMax: 131072,
      locale: 'en_US',
    };
    return amqp.connect(connect, socketOptions);
  }
}

/** impl_rabbit._fetch_ssl_params mapped onto Node's tls.connect options. */
function tlsOptions(r: RabbitOptions, hostname: string): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (r.ssl_key_file) o.key = readFileSync(r.ssl_key_file);
  if (r.ssl_cert_file) o.cert = readFileSync(r.ssl_cert_file);
  if (r.ssl_ca_file) {
    o.ca = [readFileSync(r.ssl_ca_file)];
    o.rejectUnauthorized = true; // cert_reqs = CERT_REQUIRED
    if (!r.ssl_enforce_hostname_verification) o.checkServerIdentity = () => undefined;
  } else {
    o.rejectUnauthorized = false; // python ssl default without ca_certs: CERT_NONE
  }
  o.servername = /^[\d.]+$|:/.test(hostname) ? undefined : hostname;
  const v = r.ssl_version.toLowerCase();
  const methods: Record<string, string> = {
    tlsv1: 'TLSv1_method',
    tlsv1_1: 'TLSv1_1_method',
    tlsv1_2: 'TLSv1_2_method',
    sslv23: 'TLS_method',
  };
  if (v) {
    const m = methods[v];
    if (!m) throw new Error(`Invalid SSL version : ${r.ssl_version}`);
    o.secureProtocol = m;
  }
  return o;
}

// ---------------------------------------------------------------------------------------------

export interface ManagedChannelOptions {
  /** For log lines. */
  name: string;
  /** Confirm channel (required for publish()). */
  confirm?: boolean;
  /** basic.qos prefetch per consumer (0 = unlimited, the oslo default). */
  prefetch?: number;
  /** Runs on every fresh channel: declarations, bindings, consumers. */
  setup?: (ch: Channel) => Promise<void>;
}

interface Outstanding {
  exchange: string;
  routingKey: string;
  content: Buffer;
  returned: boolean;
  /** rejects the publish when its channel goes away before the confirmation */
  fail: (err: Error) => void;
}

interface ChannelState {
  ch: Channel;
  generation: number;
  declared: Set<string>;
  outstanding: Outstanding[];
  closeError: Error | null;
}

export class ManagedChannel extends EventEmitter {
  readonly name: string;
  private readonly conn: AmqpConnection;
  private readonly opts: ManagedChannelOptions;
  private state: ChannelState | null = null;
  private opening = false;
  private wanted: { model: ChannelModel; generation: number } | null = null;
  private closed = false;
  private retry = 0;
  private lastError: string | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly waiters = new Set<Waiter<Channel>>();

  constructor(conn: AmqpConnection, opts: ManagedChannelOptions) {
    super();
    this.conn = conn;
    this.opts = opts;
    this.name = opts.name;
  }

  get channel(): Channel | null {
    return this.state?.ch ?? null;
  }

  get ready(): boolean {
    return this.state !== null;
  }

  /** Resolves with the current channel once it is open and set up. */
  waitReady(timeoutMs?: number): Promise<Channel> {
    if (this.closed) return Promise.reject(new ConnectionClosedError(`channel ${this.name} is closed`));
    if (this.state) return Promise.resolve(this.state.ch);
    return new Promise<Channel>((resolve, reject) => {
      const w: Waiter<Channel> = { resolve, reject, timer: null };
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(
          () => {
            this.waiters.delete(w);
            const why = this.lastError ? ` (last error: ${this.lastError})` : '';
            reject(new PublishTimeout(`waiting for AMQP channel ${this.name}${why}`, timeoutMs));
          },
          Math.max(0, timeoutMs),
        );
      }
      this.waiters.add(w);
    });
  }

  /** @internal called by the connection with a fresh connection. */
  open(model: ChannelModel, generation: number): void {
    if (this.closed) return;
    this.wanted = { model, generation };
    if (this.opening) return; // picked up when the running attempt ends
    this.opening = true;
    void (async () => {
      try {
        while (this.wanted && !this.closed) {
          const w = this.wanted;
          this.wanted = null;
          if (this.state && this.state.generation === w.generation) continue;
          if (!this.conn.liveModel(w.generation)) continue;
          await this.doOpen(w.model, w.generation);
        }
      } finally {
        this.opening = false;
      }
    })();
  }

  private async doOpen(model: ChannelModel, generation: number): Promise<void> {
    let ch: Channel | null = null;
    try {
      ch = this.opts.confirm ? await model.createConfirmChannel() : await model.createChannel();
      const st: ChannelState = { ch, generation, declared: new Set(), outstanding: [], closeError: null };
      ch.on('error', (err: unknown) => {
        st.closeError = err instanceof Error ? err : new Error(String(err));
      });
      ch.on('return', (msg: { fields: { exchange: string; routingKey: string }; content: Buffer }) => {
        const o = st.outstanding.find(
          (x) => !x.returned && x.exchange === msg.fields.exchange && x.routingKey === msg.fields.routingKey && x.content.equals(msg.content),
        );
        if (o) o.returned = true;
      });
      ch.once('close', () => this.onChannelClose(st));
      if (this.opts.prefetch && this.opts.prefetch > 0) await ch.prefetch(this.opts.prefetch, false);
      if (this.opts.setup) await this.opts.setup(ch);
      if (this.closed || !this.conn.liveModel(generation)) {
        await ch.close().catch(logDropped(log(), 'closing a channel opened on a connection that is closing or was replaced', 'it closes with its connection'));
        return;
      }
      this.state = st;
      this.retry = 0;
      this.lastError = null;
      log().debug({ channel: this.name }, 'AMQP channel ready');
      for (const w of this.waiters) {
        if (w.timer) clearTimeout(w.timer);
        w.resolve(ch);
      }
      this.waiters.clear();
      this.emit('ready', ch);
    } catch (err) {
      if (this.closed) return;
      const stillUp = this.conn.liveModel(generation) !== null;
      if (ch) await ch.close().catch(logDropped(log(), `closing channel ${this.name} after its setup failed`, 'it closes with its connection; a new one is opened'));
      if (!stillUp) return; // the reconnect will open us again
      const delay = Math.max(this.conn.rabbit.kombu_reconnect_delay, this.conn.retryInterval(this.retry++));
      this.lastError = errText(err);
      log().error(
        { channel: this.name, amqp_host: this.conn.endpoint?.label },
        `Failed to set up AMQP channel ${this.name}: ${errText(err)}; retrying in ${delay} seconds`,
      );
      this.scheduleReopen(generation, delay * 1000);
    }
  }

  private scheduleReopen(generation: number, ms: number): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      const model = this.conn.liveModel(generation);
      if (model && !this.closed && !this.state) this.open(model, generation);
    }, ms);
    this.retryTimer.unref?.();
  }

  private failOutstanding(st: ChannelState): void {
    const pending = st.outstanding.splice(0);
    const err = st.closeError ?? new Error('channel closed before the publish was confirmed');
    for (const o of pending) o.fail(err);
  }

  private onChannelClose(st: ChannelState): void {
    if (this.state === st) this.state = null;
    // fail the publishes waiting for a confirmation on this channel (they are retried)
    this.failOutstanding(st);
    if (this.closed) return;
    this.emit('lost', st.ch, st.closeError);
    // When the whole connection is going down its 'close' comes right after the channels' ones:
    // decide on the next turn whether this was a channel-only failure.
    setImmediate(() => this.afterChannelClose(st));
  }

  private afterChannelClose(st: ChannelState): void {
    if (this.closed || this.state) return;
    const model = this.conn.liveModel(st.generation);
    if (model) {
      // channel-level error (or consumer cancelled) while the connection lives on
      log().warn(
        { channel: this.name, amqp_host: this.conn.endpoint?.label },
        `AMQP channel ${this.name} closed${st.closeError ? `: ${errText(st.closeError)}` : ''}; re-opening in ${this.conn.rabbit.kombu_reconnect_delay} seconds`,
      );
      this.scheduleReopen(st.generation, this.conn.rabbit.kombu_reconnect_delay * 1000);
    }
  }

  /** @internal */
  connectionLost(): void {
    const st = this.state;
    this.state = null;
    if (st) {
      this.failOutstanding(st);
      this.emit('lost', st.ch, null);
    }
  }

  /**
   * Close and re-create the channel (after kombu_reconnect_delay), e.g. when the broker cancelled
   * a consumer because its queue was deleted.
   */
  recycle(reason: string): void {
    const st = this.state;
    if (!st || this.closed) return;
    log().warn({ channel: this.name }, `Re-creating AMQP channel ${this.name}: ${reason}`);
    st.closeError = new Error(reason);
    void st.ch.close().catch(logDropped(log(), `closing channel ${this.name} before re-creating it`, 'the broker already closed it, or it closes with its connection'));
  }

  /**
   * Publish on this confirm channel, waiting (up to timeoutMs) for a usable channel and for the
   * broker's confirmation. A message lost with its channel is published again on the next one;
   * the receiver's `_unique_id` duplicate check makes that safe, as with oslo's ensure().
   */
  async publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Options.Publish,
    opts: PublishOptions,
  ): Promise<PublishOutcome> {
    if (!this.opts.confirm) throw new Error(`channel ${this.name} is not a confirm channel`);
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new PublishTimeout(`publishing to ${exchange || '(default exchange)'}/${routingKey}`, opts.timeoutMs);
      await this.waitReady(remaining);
      const st = this.state;
      if (!st) continue;
      try {
        if (opts.declare && opts.declare.name && !st.declared.has(opts.declare.name)) {
          await declareExchange(st.ch, opts.declare);
          st.declared.add(opts.declare.name);
        }
        return await this.publishOnce(st, exchange, routingKey, content, { ...properties, mandatory: !!opts.mandatory }, deadline);
      } catch (err) {
        const code = errCode(st.closeError) ?? errCode(err);
        if (this.closed) throw err;
        if (code !== undefined && code !== 320 && code !== 541 && code !== 504) {
          // a real refusal by the broker (404 NOT_FOUND, 406 PRECONDITION_FAILED, 403 ...)
          throw new PublishError(`publish to ${exchange || '(default exchange)'}/${routingKey} refused: ${errText(st.closeError ?? err)}`, code);
        }
        if (err instanceof PublishTimeout) throw err;
        // channel or connection went away: loop and wait for the next one
        log().debug({ channel: this.name, err: errText(err) }, 'publish interrupted, retrying on the next channel');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private publishOnce(
    st: ChannelState,
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: Options.Publish,
    deadline: number,
  ): Promise<PublishOutcome> {
    return new Promise<PublishOutcome>((resolve, reject) => {
      let settled = false;
      const remaining = deadline - Date.now();
      const settle = (err: Error | null, outcome?: PublishOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const i = st.outstanding.indexOf(entry);
        if (i >= 0) st.outstanding.splice(i, 1);
        if (err) reject(err);
        else resolve(outcome as PublishOutcome);
      };
      const entry: Outstanding = { exchange, routingKey, content, returned: false, fail: (err) => settle(err) };
      const timer = setTimeout(
        () => settle(new PublishTimeout(`waiting for the broker to confirm a publish to ${routingKey}`, remaining)),
        Math.max(0, remaining),
      );
      st.outstanding.push(entry);
      try {
        (st.ch as ConfirmChannel).publish(exchange, routingKey, content, properties, (err: unknown) => {
          if (err) settle(err instanceof Error ? err : new Error(String(err)));
          else settle(null, entry.returned ? 'returned' : 'routed');
        });
      } catch (err) {
        settle(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new ConnectionClosedError(`channel ${this.name} closed`));
    }
    this.waiters.clear();
    const st = this.state;
    this.state = null;
    this.conn.forget(this);
    if (st) await st.ch.close().catch(logDropped(log(), `closing channel ${this.name}`, 'it closes with its connection'));
  }
}
