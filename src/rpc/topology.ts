// Names and declare arguments of the RabbitMQ objects oslo.messaging's rabbit driver uses
// (impl_rabbit.py Connection.declare_topic_consumer / declare_fanout_consumer /
// declare_direct_consumer / topic_send / fanout_send / direct_send, _get_queue_arguments).
//
//   topic consumer  T, T.S : exchange <control_exchange> topic, durable = amqp_durable_queues or
//                             rabbit_quorum_queue, exchange+queue auto_delete = amqp_auto_delete,
//                             args: x-ha-policy (ha) | x-queue-type quorum (+ quorum limits); no TTL
//   fanout consumer T_fanout_<hex>: exchange T_fanout fanout durable=false auto_delete=true,
//                             queue durable=false auto_delete=false, args: x-ha-policy (ha) +
//                             x-expires = ttl*1000; never quorum
//   direct consumer reply_<hex> (default exchange): durable=false auto_delete=false, args:
//                             x-ha-policy (ha) + x-expires; never quorum
import { randomUUID } from 'node:crypto';
import type { Channel, Options } from 'amqplib';
import { ConfigError } from '../errors.js';
import { DEFAULT_RABBIT_OPTIONS, type RabbitOptions } from './transport-url.js';

/** oslo_messaging.Target, the parts the rabbit driver uses. */
export interface Target {
  topic: string;
  server?: string | null;
  /** Exchange override; default is control_exchange ('openstack'). */
  exchange?: string | null;
  fanout?: boolean;
  /** Version an endpoint implements (server side) or a message is sent as (client side). */
  version?: string | null;
  namespace?: string | null;
}

export interface ExchangeSpec {
  name: string;
  type: 'topic' | 'fanout' | 'direct';
  durable: boolean;
  autoDelete: boolean;
}

export type QueueKind = 'topic' | 'server' | 'fanout' | 'reply';

export interface QueueSpec {
  name: string;
  kind: QueueKind;
  durable: boolean;
  autoDelete: boolean;
  arguments: Record<string, unknown>;
  /** null for reply queues (default exchange, no binding). */
  exchange: ExchangeSpec | null;
  routingKey: string;
}

/** The options that shape topology: the rabbit group plus [DEFAULT] control_exchange. */
export interface TopologyOptions {
  controlExchange: string;
  rabbit: RabbitOptions;
}

export const DEFAULT_CONTROL_EXCHANGE = 'openstack';

/**
 * Properties kombu puts on every oslo message (kombu's Producer.publish via impl_rabbit.py, measured on the wire). Calls add
 * `expiration` = timeout in ms; casts and replies have none.
 */
export const MESSAGE_PROPERTIES: Readonly<Options.Publish> = Object.freeze({
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  deliveryMode: 2,
  priority: 0,
  headers: {},
});

export function topologyOptions(rabbit: Partial<RabbitOptions> = {}, controlExchange = DEFAULT_CONTROL_EXCHANGE): TopologyOptions {
  return { controlExchange, rabbit: { ...DEFAULT_RABBIT_OPTIONS, ...rabbit } };
}

export function uuidHex(): string {
  return randomUUID().replace(/-/g, '');
}

/** impl_rabbit._get_queue_arguments */
export function queueArguments(
  rabbit: RabbitOptions,
  opts: { ttlSeconds: number; quorum: boolean },
): Record<string, unknown> {
  if (opts.quorum && rabbit.rabbit_ha_queues) {
    throw new ConfigError(
      'Configuration Error: rabbit_quorum_queue and rabbit_ha_queues both enabled, queue type is quorum or HA (mirrored) not both',
    );
  }
  const args: Record<string, unknown> = {};
  if (rabbit.rabbit_ha_queues) args['x-ha-policy'] = 'all';
  if (opts.quorum) {
    args['x-queue-type'] = 'quorum';
    if (rabbit.rabbit_quorum_delivery_limit) args['x-delivery-limit'] = rabbit.rabbit_quorum_delivery_limit;
    if (rabbit.rabbit_quroum_max_memory_length) args['x-max-in-memory-length'] = rabbit.rabbit_quroum_max_memory_length;
    if (rabbit.rabbit_quroum_max_memory_bytes) args['x-max-in-memory-bytes'] = rabbit.rabbit_quroum_max_memory_bytes;
  }
  if (opts.ttlSeconds > 0) args['x-expires'] = opts.ttlSeconds * 1000;
  return args;
}

/** Connection.durable: quorum queues are always durable. */
export function topicDurable(rabbit: RabbitOptions): boolean {
  return rabbit.amqp_durable_queues || rabbit.rabbit_quorum_queue;
}

/** The topic exchange casts/calls go to (topic_send / declare_topic_consumer). */
export function topicExchange(o: TopologyOptions, name?: string | null): ExchangeSpec {
  return { name: name || o.controlExchange, type: 'topic', durable: topicDurable(o.rabbit), autoDelete: o.rabbit.amqp_auto_delete };
}

/** `<topic>_fanout` (fanout_send / declare_fanout_consumer). */
export function fanoutExchange(topic: string): ExchangeSpec {
  return { name: `${topic}_fanout`, type: 'fanout', durable: false, autoDelete: true };
}

/** declare_topic_consumer(exchange, topic): queue named after the routing key. */
export function topicQueue(o: TopologyOptions, routingKey: string, kind: 'topic' | 'server' = 'topic', exchange?: string | null): QueueSpec {
  return {
    name: routingKey,
    kind,
    durable: topicDurable(o.rabbit),
    autoDelete: o.rabbit.amqp_auto_delete,
    arguments: queueArguments(o.rabbit, { ttlSeconds: 0, quorum: o.rabbit.rabbit_quorum_queue }),
    exchange: topicExchange(o, exchange),
    routingKey,
  };
}

/** declare_fanout_consumer(topic): `<topic>_fanout_<uuid4 hex>`, bound with key = topic. */
export function fanoutQueue(o: TopologyOptions, topic: string, unique: string = uuidHex()): QueueSpec {
  return {
    name: `${topic}_fanout_${unique}`,
    kind: 'fanout',
    durable: false,
    autoDelete: false,
    arguments: queueArguments(o.rabbit, { ttlSeconds: o.rabbit.rabbit_transient_queues_ttl, quorum: false }),
    exchange: fanoutExchange(topic),
    routingKey: topic,
  };
}

/** declare_direct_consumer(reply_q): the caller's reply queue on the default exchange. */
export function replyQueue(o: TopologyOptions, name: string = `reply_${uuidHex()}`): QueueSpec {
  return {
    name,
    kind: 'reply',
    durable: false,
    autoDelete: false,
    arguments: queueArguments(o.rabbit, { ttlSeconds: o.rabbit.rabbit_transient_queues_ttl, quorum: false }),
    exchange: null,
    routingKey: '',
  };
}

/**
 * The queues AMQPDriverBase.listen(target) declares: T, T.S and T_fanout_<hex>.
 * `fanoutUnique` lets a caller keep the fanout queue name across re-declarations.
 */
export function listenQueues(o: TopologyOptions, target: Target, fanoutUnique?: string): QueueSpec[] {
  if (!target.topic) throw new ConfigError('RPC server target needs a topic');
  if (!target.server) throw new ConfigError(`RPC server target ${target.topic} needs a server`);
  return [
    topicQueue(o, target.topic, 'topic', target.exchange),
    topicQueue(o, `${target.topic}.${target.server}`, 'server', target.exchange),
    fanoutQueue(o, target.topic, fanoutUnique),
  ];
}

/** Routing key a cast/call to `target` is published with (AMQPDriverBase._send). */
export function routingKeyFor(target: Target): string {
  return target.server ? `${target.topic}.${target.server}` : target.topic;
}

/** volume_utils.extract_host(host, 'host'): 'storage1@lvm#pool' → 'storage1'. */
export function extractHostPart(host: string): string {
  return (host.split('#')[0] as string).split('@')[0] as string;
}

export const VOLUME_TOPIC = 'cinder-volume';

/**
 * cinder/service.py Service.start() for the volume service:
 *   Target(topic='cinder-volume', server=host)
 *   Target(topic='cinder-volume.<host>', server=extract_host(host, 'host'))
 *   [Target(topic='cinder-volume.<cluster>', server=extract_host(cluster, 'host'))]
 */
export function targetsForVolumeService(s: { host: string; cluster?: string | null; topic?: string }): Target[] {
  const topic = s.topic ?? VOLUME_TOPIC;
  const targets: Target[] = [
    { topic, server: s.host },
    { topic: `${topic}.${s.host}`, server: extractHostPart(s.host) },
  ];
  if (s.cluster) targets.push({ topic: `${topic}.${s.cluster}`, server: extractHostPart(s.cluster) });
  return targets;
}

// ---------------------------------------------------------------------------------------------
// Declaring on an amqplib channel

export async function declareExchange(ch: Channel, ex: ExchangeSpec): Promise<void> {
  if (ex.name === '') return; // the default exchange always exists and cannot be declared
  await ch.assertExchange(ex.name, ex.type, { durable: ex.durable, autoDelete: ex.autoDelete, internal: false, arguments: {} });
}

/** kombu Queue.declare(): exchange (if named), queue, binding (if named). */
export async function declareQueue(ch: Channel, q: QueueSpec): Promise<void> {
  if (q.exchange && q.exchange.name) await declareExchange(ch, q.exchange);
  await ch.assertQueue(q.name, { durable: q.durable, autoDelete: q.autoDelete, exclusive: false, arguments: { ...q.arguments } });
  if (q.exchange && q.exchange.name) await ch.bindQueue(q.name, q.exchange.name, q.routingKey);
}
