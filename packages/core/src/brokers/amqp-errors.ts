/**
 * RabbitMQ's channel errors turned into errors that say what to fix: 404 (no such
 * queue or exchange) names the queue and `taskCreateMissingQueues` / `taskQueues`;
 * 406 (PRECONDITION_FAILED: a queue or exchange already exists with other
 * arguments) names the queue, the argument, both values and how to reconcile them.
 */
import { CeleriacError } from '../errors.js';

/** A RabbitMQ channel error with the fix spelled out. */
export class AmqpChannelError extends CeleriacError {
  override name = 'AmqpChannelError';
  constructor(
    message: string,
    /** AMQP reply code: 404, 406, 403... */
    readonly code: number,
    /** The queue concerned, when known. */
    readonly queue?: string,
    /** The argument that differs (406), e.g. `x-max-priority`. */
    readonly argument?: string,
  ) {
    super(message);
  }
}

const INEQUIVALENT = /inequivalent arg '([^']+)' for (queue|exchange) '([^']*)' in vhost '([^']*)': received (?:the value )?(.+?) but current is (.+)$/;
const NOT_FOUND = /no (queue|exchange) '([^']*)' in vhost '([^']*)'/;

/** The server's text of an amqplib error (`PRECONDITION_FAILED - ...`). */
function serverText(err: Error): string {
  const m = /with message "(.*)"$/s.exec(err.message);
  return (m ? m[1]! : err.message).replace(/^[A-Z_]+ - /, '');
}

/**
 * A clear error for a channel error met while declaring, checking or consuming
 * `context.queue`; errors that are not channel errors come back unchanged.
 */
export function explainChannelError(err: unknown, context: { queue?: string; what: string }): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'number') return err;
  const text = serverText(err);
  if (code === 406) {
    const m = INEQUIVALENT.exec(text);
    if (m) {
      const [, arg, kind, name, vhost, received, current] = m;
      const fix =
        kind === 'queue'
          ? `Make taskQueues (queueArguments, maxPriority, durable) or taskQueueMaxPriority match how it was declared, or delete the queue so it is declared again (rabbitmqctl delete_queue ${JSON.stringify(name)} --vhost ${JSON.stringify(vhost)}; its messages are lost).`
          : `Use the exchange's existing type in taskQueues, or delete the exchange (rabbitmqctl is not enough: use the management UI or an AMQP client).`;
      return new AmqpChannelError(
        `Cannot ${context.what}: RabbitMQ already has ${kind} ${JSON.stringify(name)} (vhost ${JSON.stringify(vhost)}) with a different ${arg}: it is ${current} there, Celeriac asked for ${received}. ${fix}`,
        code,
        kind === 'queue' ? name : context.queue,
        arg,
      );
    }
    return new AmqpChannelError(`Cannot ${context.what}: RabbitMQ refused it (406 PRECONDITION_FAILED: ${text}).`, code, context.queue);
  }
  if (code === 404) {
    const m = NOT_FOUND.exec(text);
    const [kind, name] = m ? [m[1]!, m[2]!] : ['queue', context.queue ?? '?'];
    const fix =
      kind === 'queue'
        ? `Declare it in taskQueues, turn taskCreateMissingQueues on, or create it on the broker.`
        : `Declare a queue bound to it in taskQueues, or create the exchange on the broker.`;
    return new AmqpChannelError(`Cannot ${context.what}: ${kind} ${JSON.stringify(name)} does not exist on RabbitMQ (404 NOT_FOUND). ${fix}`, code, kind === 'queue' ? name : context.queue);
  }
  if (code === 403) {
    return new AmqpChannelError(`Cannot ${context.what}: RabbitMQ refused access (403 ACCESS_REFUSED: ${text}). Check the user's permissions on the vhost.`, code, context.queue);
  }
  return new AmqpChannelError(`Cannot ${context.what}: RabbitMQ closed the channel (${code}: ${text}).`, code, context.queue);
}
