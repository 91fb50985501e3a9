// A standalone RpcServer in its own process, for tests that kill it with SIGKILL or that must not
// take the test process down with it when a message blocks its event loop.
// Usage: node --import tsx server-child.ts <transport_url> <topic> <server> <log file> [poison dir]
// Prints READY once consuming, BLOCKING when the `block` handler starts spinning.
import { writeSync } from 'node:fs';
import { createLogger, setRootLogger } from '../../../src/log.js';
import { AmqpConnection } from '../../../src/rpc/connection.js';
import { RpcServer } from '../../../src/rpc/server.js';

const [broker, topic, server, logFile, poisonDir] = process.argv.slice(2) as [string, string, string, string, string | undefined];
setRootLogger(createLogger({ level: 'debug', pretty: false, destination: logFile }));

const conn = new AmqpConnection(broker);
const rpc = new RpcServer({
  connection: conn,
  targets: [{ topic, server }],
  endpoints: [
    {
      version: '3.18',
      methods: {
        echo: (_ctx, args) => args,
        // what a CPU-bound bug looks like to the agent: the loop never comes back
        block: () => {
          writeSync(1, 'BLOCKING\n');
          for (;;);
        },
      },
    },
  ],
  poisonStateDir: poisonDir || null,
});
await rpc.start(20_000);
writeSync(1, 'READY\n');
process.on('SIGTERM', () => {
  void rpc
    .stop(2_000)
    .then(() => conn.close())
    .finally(() => process.exit(0));
});
