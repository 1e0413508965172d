/**
 * The Celery task message (protocol v2) as it travels between producers, brokers and
 * workers, independent of any transport. Brokers turn it into their own framing
 * (kombu's JSON envelope on Redis, native AMQP fields on RabbitMQ).
 */

/** The protocol v2 headers Celery 5.2 always writes, in the order it writes them. */
export interface TaskHeaders {
  lang: string;
  task: string;
  id: string;
  shadow: string | null;
  eta: string | null;
  expires: string | null;
  group: string | null;
  group_index: number | null;
  retries: number;
  timelimit: [number | null, number | null];
  root_id: string;
  parent_id: string | null;
  argsrepr: string;
  kwargsrepr: string;
  origin: string;
  ignore_result: boolean;
  /** Body compression MIME type (`application/x-gzip`, ...), when compressed. */
  compression?: string;
  /** Set by the Redis transport when an unacked message is restored. */
  redelivered?: boolean;
  /** Custom headers given with `applyAsync({ headers })`. */
  [custom: string]: unknown;
}

/** AMQP basic properties (plus the Redis-only ones the envelope adds). */
export interface MessageProperties {
  correlation_id?: string;
  reply_to?: string;
  delivery_mode?: number;
  priority?: number;
  /** Milliseconds as a decimal string, only when `expires` is set. */
  expiration?: string;
  [extra: string]: unknown;
}

/** One message: headers + properties + serialized body bytes. */
export interface TaskMessage {
  headers: TaskHeaders;
  properties: MessageProperties;
  /** e.g. `application/json`. */
  contentType: string;
  /** e.g. `utf-8` or `binary`. */
  contentEncoding: string;
  /** The serialized, possibly compressed body: `[args, kwargs, embed]` for v2. */
  body: Buffer;
}

/** A signature as it appears on the wire (inside `embed`, `link`, chains...). */
export interface WireSignature {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtask_type: string | null;
  immutable: boolean;
  /** Present when Celery serialised `chord_size` etc.; kept as received. */
  [extra: string]: unknown;
}

/** The third element of a v2 body. */
export interface Embed {
  callbacks: WireSignature[] | null;
  errbacks: WireSignature[] | null;
  chain: WireSignature[] | null;
  chord: WireSignature | null;
}

/** The decoded v2 body. */
export type TaskBody = [args: unknown[], kwargs: Record<string, unknown>, embed: Embed];
