/**
 * A worker's side of remote control: listens on the `celery.pidbox` fanout, keeps
 * what is addressed to this node (Celery's dispatch rules: `destination` names, else
 * `pattern` + `matcher`, else everyone), drops expired requests, runs the command
 * and, when a reply is wanted, sends `{"<node>": reply}` to the requester.
 */
import type { ControlChannel } from '../brokers/broker.js';
import type { Logger } from '../logger.js';
import type { TaskMessage } from '../protocol/message.js';
import { CONTROL_COMMANDS, type ControlTarget } from './control-commands.js';
import { clockOf } from './lamport-clock.js';
import { decodeControlRequest, encodeControlReply, PIDBOX_EXCHANGE, type ControlRequest } from './pidbox-message.js';

/** `glob` (fnmatch) pattern → RegExp. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Is `request` addressed to `node`? */
export function addressedTo(request: ControlRequest, node: string): boolean {
  if (request.destination) return request.destination.includes(node);
  if (request.pattern) {
    try {
      const re = request.matcher === 'pcre' ? new RegExp(request.pattern) : globToRegExp(request.pattern);
      return re.test(node);
    } catch {
      return false;
    }
  }
  return true;
}

/** The listening side of remote control for one worker. */
export class WorkerMailbox {
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    private readonly channel: ControlChannel,
    private readonly target: ControlTarget,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    // RabbitMQ: the node's own queue, `<node>.celery.pidbox`, as kombu's `Mailbox.get_queue`.
    this.unsubscribe = await this.channel.subscribe(PIDBOX_EXCHANGE, (message) => void this.handle(message), { queue: `${this.target.hostname}.${PIDBOX_EXCHANGE}` });
  }

  private async handle(message: TaskMessage): Promise<void> {
    let request: ControlRequest;
    try {
      request = decodeControlRequest(message);
    } catch (err) {
      this.log.warn({ err }, `Ignored a remote-control message: ${(err as Error).message}`);
      return;
    }
    const node = this.target.hostname;
    if (!addressedTo(request, node)) return;
    const clock = clockOf(this.target.app);
    clock.adjust(request.clock);
    if (request.expires && request.expires * 1000 < Date.now()) {
      this.log.debug({ method: request.method }, 'Ignored an expired remote-control request');
      return;
    }
    const handler = CONTROL_COMMANDS[request.method];
    let reply: unknown;
    if (!handler) {
      this.log.error({ method: request.method }, `No such remote-control command: ${request.method}`);
      reply = { error: `No such command: ${request.method}` };
    } else {
      try {
        reply = handler(this.target, request.arguments);
      } catch (err) {
        this.log.error({ err, method: request.method }, `Remote-control command ${request.method} failed: ${(err as Error).message}`);
        reply = { error: `Error running command ${request.method}: ${(err as Error).message}` };
      }
    }
    if (reply === undefined || !request.ticket || !request.replyTo) return;
    try {
      await this.channel.publishDirect(request.replyTo.exchange, request.replyTo.routingKey, encodeControlReply(node, reply, request.ticket, clock.forward()));
    } catch (err) {
      this.log.warn({ err, method: request.method }, `Could not send the reply to ${request.method}: ${(err as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}
