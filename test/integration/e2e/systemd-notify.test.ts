// Under systemd (Type=notify, WatchdogSec=) the agent says READY=1 once it serves, pings
// WATCHDOG=1 from its event loop, and says STOPPING=1 on SIGTERM. A real unix datagram socket
// (a Python receiver, as systemd's is a datagram socket too) stands in for systemd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCinderConf, waitFor, SYSTEM_PYTHON } from '../../helpers/cinder-stack.js';
import { startAgentProcess, type AgentProcess } from '../../helpers/agent-process.js';
import { createCinderDatabase, type TestCinderDb } from '../../helpers/cinder-db.js';
import { repoRoot } from '../../helpers/fixtures.js';

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    data = s.recv(4096)
    print(data.decode().replace("\\n", "|"), flush=True)
`;

describe('systemd notification', () => {
  let dir: string;
  let db: TestCinderDb;
  let receiver: ChildProcess;
  const received: string[] = [];
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-notify-'));
    await mkdir(join(dir, 'locks'));
    db = await createCinderDatabase('sqlite');
    receiver = spawn(SYSTEM_PYTHON, ['-c', RECEIVER, join(dir, 'notify.sock')], { stdio: ['ignore', 'pipe', 'inherit'] });
    receiver.stdout!.on('data', (d: Buffer) => received.push(...d.toString().split('\n').filter(Boolean)));
    await waitFor('the notify socket', 10_000, async () => (received.includes('bound') ? true : undefined));
  });
  afterAll(async () => {
    await agent?.stop('SIGKILL');
    receiver?.kill('SIGKILL');
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends READY=1, WATCHDOG=1 while serving, and STOPPING=1 on SIGTERM', async () => {
    const confPath = join(dir, 'cinder.conf');
    await writeFile(
      confPath,
      writeCinderConf(dir, { host: `cbnotify${process.pid}`, apiPort: 0, databaseUrl: db.url, backends: { file: { volume_driver: 'file' } } }) +
        '\n[cinderblock]\nmetrics_listen =\n',
    );
    agent = startAgentProcess(confPath, [], { NOTIFY_SOCKET: join(dir, 'notify.sock'), WATCHDOG_USEC: '2000000' });
    await waitFor('READY=1', 30_000, async () => (received.some((l) => l.includes('READY=1')) ? true : undefined));
    expect(received.some((l) => l.startsWith('STATUS=serving'))).toBe(true);
    await waitFor('WATCHDOG=1', 10_000, async () => (received.some((l) => l.includes('WATCHDOG=1')) ? true : undefined));
    expect(await agent.stop()).toBe(0);
    await waitFor('STOPPING=1', 5_000, async () => (received.some((l) => l.includes('STOPPING=1')) ? true : undefined));
  });

  it('prints its version', () => {
    const out = execFileSync(process.execPath, [join(repoRoot, 'bin', 'cinderblock.js'), '--version'], { encoding: 'utf8' });
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
