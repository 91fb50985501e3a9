// `cinderblock` command line. Each subcommand lives in its own module and is imported only when
// used, so `cinderblock --version` does not load the broker, database or native code.
import { Command } from 'commander';
import { packageVersion } from '../version.js';

const collect = (value: string, previous: string[]) => [...previous, value];

/** oslo.config reads --config-file and --config-dir in the order given; keep that order. */
export interface ConfigSourceArg {
  kind: 'file' | 'dir';
  path: string;
}

function configSources(argv: string[]): ConfigSourceArg[] {
  const out: ConfigSourceArg[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--config-(file|dir)(?:=(.*))?$/.exec(a);
    if (!m) continue;
    const path = m[2] ?? argv[++i];
    if (path) out.push({ kind: m[1] as 'file' | 'dir', path });
  }
  return out;
}

function addConfigOptions(cmd: Command): Command {
  return cmd
    .option('--config-file <path>', 'cinder.conf to read (repeatable; later files override earlier ones)', collect, [])
    .option('--config-dir <dir>', 'directory of *.conf files read in name order (repeatable)', collect, []);
}

export function buildProgram(argv: string[]): Command {
  const program = new Command('cinderblock')
    .description('Storage-node agent that takes the place of OpenStack cinder-volume')
    .version(packageVersion(), '-V, --version');

  addConfigOptions(program.command('serve'))
    .description('run the volume service for every backend in enabled_backends')
    .action(async () => {
      const { serve } = await import('./serve.js');
      await serve(configSources(argv));
    });

  program
    .command('copy')
    .description('copy a volume (device or file) with the native engine: O_DIRECT, sparse-aware, throttled')
    .argument('<src>', 'source device or file')
    .argument('<dst>', 'destination device or file')
    .option('--sparse', 'skip zero blocks: the destination already reads as zeros (thin LV, new sparse file)')
    .option('--bps-limit <n>', 'bytes per second, e.g. 100M (volume_copy_bps_limit semantics)')
    .option('--verify', 'checksum what was written and print it')
    .action(async (src: string, dst: string, o: { sparse?: boolean; bpsLimit?: string; verify?: boolean }) => {
      const { copyCommand } = await import('./copy.js');
      await copyCommand(src, dst, { sparse: Boolean(o.sparse), bpsLimit: o.bpsLimit, verify: Boolean(o.verify) });
    });

  const connector = program.command('connector').description('initiator side: attach, detach or grow a volume on this host from its connection_info');
  for (const [action, what] of [
    ['connect', 'log in (CHAP from connection_info) and print the device to use'],
    ['disconnect', 'flush the multipath map, remove the disks, log out and delete the node records'],
    ['extend', 'rescan every path, grow the multipath map and print the new size'],
  ] as const) {
    const cmd = connector
      .command(action)
      .description(what)
      .requiredOption('--connection-info <file>', "connection_info JSON file, or '-' for stdin")
      .option('--iface <name>', 'iscsiadm interface', 'default')
      .option('--root-helper <cmd>', 'prefix for iscsiadm/multipath when not root, e.g. "sudo -n"');
    if (action === 'connect') cmd.option('--multipath', 'use every portal through dm-multipath').option('--no-multipath', 'use one path only');
    if (action === 'disconnect') cmd.option('--force', 'carry on past failures and report them at the end');
    cmd.action(async (o: { connectionInfo: string; iface?: string; rootHelper?: string; multipath?: boolean; force?: boolean }) => {
      const { connectorCommand } = await import('./connector.js');
      await connectorCommand(action, o);
    });
  }

  const config = program.command('config').description('inspect configuration');
  addConfigOptions(config.command('show'))
    .description('print the effective configuration with its sources (secrets masked)')
    .action(async () => {
      const { showConfig } = await import('./config-show.js');
      await showConfig(configSources(argv));
    });

  return program;
}

/** Entry point used by bin/cinderblock.js. */
export async function run(argv: string[]): Promise<void> {
  try {
    await buildProgram(argv).parseAsync(argv);
  } catch (err) {
    process.stderr.write(`cinderblock: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
