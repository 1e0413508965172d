/**
 * A loopback TCP proxy in front of a redis-server that can drop a connection in the
 * middle of a pipelined exchange: after it forwarded the reply to one command and
 * before the reply to the next. Used to lose exactly the reply of a command that Redis
 * ran, which a killed server or a reset socket does only by chance.
 */
import net from 'node:net';

export interface ReplyCutter {
  /** Port clients connect to instead of the server's. */
  port: number;
  /**
   * Arm a cut: on the next client connection that sends `command`, forward the server's
   * first reply after it (a RESP bulk string) and drop both sides before anything else.
   * Resolves once cut.
   */
  cutAfterReplyTo(command: string): Promise<void>;
  close(): Promise<void>;
}

/** Length of the RESP bulk string at the start of `data`, or 0 while incomplete. */
function bulkLength(data: Buffer): number {
  const headerEnd = data.indexOf('\r\n');
  if (data[0] !== 0x24 /* $ */ || headerEnd < 0) return 0;
  const size = Number(data.subarray(1, headerEnd).toString());
  const total = headerEnd + 2 + (size < 0 ? 0 : size + 2);
  return data.length >= total ? total : 0;
}

export async function startReplyCutter(serverPort: number): Promise<ReplyCutter> {
  let armed: { command: string; done: () => void } | null = null;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const server = net.connect(serverPort, '127.0.0.1');
    sockets.add(client).add(server);
    let watching = false;
    let cutting = false;
    let held = Buffer.alloc(0);
    const drop = () => (client.destroy(), server.destroy());
    client.on('close', drop).on('error', drop);
    server.on('close', drop).on('error', drop);
    client.on('data', (data) => {
      if (armed && !watching && data.toString('latin1').toUpperCase().includes(`\r\n${armed.command.toUpperCase()}\r\n`)) watching = true;
      server.write(data);
    });
    server.on('data', (data) => {
      if (cutting) return;
      if (!watching) return void client.write(data);
      held = Buffer.concat([held, data]);
      const first = bulkLength(held);
      if (first === 0) return;
      cutting = true;
      client.write(held.subarray(0, first), () => {
        const done = armed!.done;
        armed = null;
        drop();
        done();
      });
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    cutAfterReplyTo: (command) => new Promise<void>((done) => (armed = { command, done })),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}
