// Every bound the RPC server puts on an incoming message, in one place.
//
// Why bounds at all (issue 10): a call whose context carried a 1 MiB request_id blocked the event
// loop for minutes (the log scrubber was quadratic; other per-string work may be too), so RPC,
// metrics, heartbeats and SIGTERM all stopped. A message over a bound is refused before anything
// else looks at it: one log line that names the field and its size (never its content), and a
// failure reply when it is a call with a usable reply queue.
//
// What real traffic needs: the 38 captured cinder 21.3 messages (/work/shared/cinder/fixtures)
// peak at a 12.7 KB body, 10 levels of nesting, 88-character strings (provider_location) and
// 40-character context strings (request_id). Each bound below leaves a wide margin over that,
// and over what cinder's database columns and oslo's formats can hold at all.

const KIB = 1024;
const MIB = 1024 * KIB;

export const RPC_LIMITS = {
  /**
   * Whole body as received, in bytes. 4 MiB is 300 times the largest captured message; the
   * biggest things a volume service is ever sent (a create_volume with its request_spec, image
   * metadata and a multi-region service catalog in the context) stay well under 1 MiB. It bounds
   * the memory and the time (tens of ms) of parsing one message. RabbitMQ itself accepts up to
   * 128 MiB (max_message_size), which is why the agent needs its own bound.
   */
  maxMessageBytes: 4 * MIB,

  /**
   * Nesting of objects and arrays. Captured traffic reaches 10 (an attachment's connector inside
   * a volume inside the args: every versioned object adds two levels). 32 leaves room for deeper
   * object graphs and keeps every recursive walk (object (de)serialization, log scrubbing) shallow.
   */
  maxDepth: 32,

  /**
   * method, version, namespace, _msg_id, _reply_q, _unique_id. 255 because an AMQP short string
   * (and so a queue name) cannot be longer: a reply queue name longer than that cannot exist.
   * oslo's ids are 32 hex characters, cinder's method names under 40.
   */
  maxHeaderChars: 255,

  /**
   * _context_request_id and _context_global_request_id: oslo.context makes them 'req-' + a UUID
   * (40 characters); cinder's messages table keeps them in a 255-character column. They go on
   * every log line of the request, so they get the tightest bound.
   */
  maxRequestIdChars: 255,

  /**
   * Any other string in the context, at any depth (user and project ids, user_identity,
   * auth_token, timestamp, the URLs of service_catalog). The longest legitimate one is a keystone
   * token: Fernet tokens are under 300 characters, JWS tokens about 1 KiB. 4 KiB is four times that.
   */
  maxContextStringChars: 4 * KIB,

  /**
   * Any string in args, at any depth. The longest string a volume service is legitimately sent
   * comes from a TEXT column of cinder's database (64 KiB in MySQL: e.g. an attachment's
   * connection_info); everything else is bounded to 255 by cinder's API and schema.
   */
  maxArgStringChars: 64 * KIB,

  /** Keys of any object (args, context, nested). Metadata keys are at most 255 in cinder and glance. */
  maxKeyChars: 1 * KIB,
} as const;

export const POISON_LIMITS = {
  /**
   * How many times a message may be started without finishing before a redelivery of it is
   * refused. 2: the original delivery and one redelivery. One redelivery is what an agent killed
   * for an unrelated reason (deploy, OOM elsewhere, host reboot) legitimately causes; a message
   * that took the agent down twice is the likely cause and is not tried a third time.
   */
  maxStarts: 2,

  /**
   * Records kept (started, not finished). Only redelivered messages are recorded and a record is
   * removed when its message finishes, so the file normally holds a handful; 1000 bounds it if
   * the agent keeps crashing.
   */
  maxRecords: 1000,

  /**
   * How long a record is kept. Messages wait in the queue while the agent is down, so a
   * redelivery can come days after the crash; a week covers a long outage without letting the
   * file grow forever.
   */
  recordTtlMs: 7 * 24 * 3600 * 1000,
} as const;

/**
 * How long begin() waits for the ack of a delivery to leave the process before handling it
 * (see ack-flush.ts). Only a congested socket takes more than a few turns of the event loop; past
 * this, handling starts anyway rather than stalling the queue.
 */
export const ACK_FLUSH_TIMEOUT_MS = 5_000;
