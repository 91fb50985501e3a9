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
    ['connect', 'iSCSI: log in (CHAP from connection_info); NVMe/TCP: nvme connect as host_nqn; print the device to use'],
    ['disconnect', 'iSCSI: flush the multipath map, remove the disks, log out, delete the node records; NVMe/TCP: nvme disconnect unless the subsystem serves another namespace here'],
    ['extend', 'rescan every path (multipath map grown for iSCSI) and print the new size'],
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

  addConfigOptions(program.command('audit'))
    .description('compare what the targets export with what the database says is attached; exit 3 when something is found')
    .option('--fix', 'remove exposures and orphans (never data, never access an attachment needs), printing each action')
    .option('--json', 'machine-readable output')
    .option('--backend <name>', 'only this backend')
    .action(async (o: { fix?: boolean; json?: boolean; backend?: string }) => {
      const { auditCommand } = await import('./audit.js');
      await auditCommand(configSources(argv), { fix: Boolean(o.fix), json: Boolean(o.json), ...(o.backend ? { backend: o.backend } : {}) });
    });

  const config = program.command('config').description('inspect configuration');
  addConfigOptions(config.command('show'))
    .description('print the effective configuration with its sources (secrets masked)')
    .action(async () => {
      const { showConfig } = await import('./config-show.js');
      await showConfig(configSources(argv));
    });

  // The operator's debug commands (read-only unless they say otherwise): see README "Debug CLI".
  addConfigOptions(program.command('status'))
    .description("this host's backends: service rows, pools, volumes, exports, target daemon, in-flight work and locks")
    .option('--json', 'print JSON instead of tables')
    .option('--socket <path>', 'admin socket of the agent (default <state_path>/cinderblock/admin.sock)')
    .action(async (o: { json?: boolean; socket?: string }) => {
      const { statusCommand } = await import('./status.js');
      await statusCommand(configSources(argv), o);
    });

  const volume = program.command('volume').description('one volume as the database, the backend and the target daemon see it');
  addConfigOptions(volume.command('show'))
    .description('database row, LV or file, export (target, LUNs, ACLs, sessions), attachments and what disagrees')
    .argument('<id-or-name>', 'volume id or display name')
    .option('--json', 'print JSON instead of tables')
    .action(async (idOrName: string, o: { json?: boolean }) => {
      const { volumeShowCommand } = await import('./volume.js');
      await volumeShowCommand(configSources(argv), idOrName, o);
    });
  addConfigOptions(volume.command('list'))
    .description("volumes on this host's backends (or --host, --all)")
    .option('--host <host>', 'host, host@backend or host@backend#pool, matched as cinder does')
    .option('--status <status>', 'only volumes with this status')
    .option('--all', 'every host, not only this one')
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { host?: string; status?: string; all?: boolean; json?: boolean }) => {
      const { volumeListCommand } = await import('./volume.js');
      await volumeListCommand(configSources(argv), o);
    });

  const image = program.command('image').description("the agent's image paths by hand, with cinder.conf's Glance and image options");
  addConfigOptions(image.command('fetch'))
    .description('write an image onto a device or file, checked as a create-from-image is (format, backing files, hash)')
    .argument('<image-id>', 'Glance image id')
    .argument('<dest>', 'block device or file, at least as large as the image disk')
    .option('--sparse', 'the destination reads as zeros (new thin LV, new sparse file): leave zero runs unwritten')
    .option('--backend <name>', 'backend section whose image options to use (default: the first enabled)')
    .option('--json', 'print the result as JSON')
    .action(async (imageId: string, dest: string, o: { sparse?: boolean; backend?: string; json?: boolean }) => {
      const { imageFetchCommand } = await import('./image.js');
      await imageFetchCommand(configSources(argv), imageId, dest, o);
    });
  addConfigOptions(image.command('upload'))
    .description('save a device or file as a new Glance image, as an upload-to-image does')
    .argument('<src>', 'block device or file')
    .requiredOption('--name <name>', 'image name')
    .option('--disk-format <format>', 'raw, qcow2, vmdk, vdi, vhd or vhdx', 'raw')
    .option('--container-format <format>', 'container format', 'bare')
    .option('--backend <name>', 'backend section whose image options to use (default: the first enabled)')
    .option('--json', 'print the result as JSON')
    .action(async (src: string, o: { name: string; diskFormat: string; containerFormat: string; backend?: string; json?: boolean }) => {
      const { imageUploadCommand } = await import('./image.js');
      await imageUploadCommand(configSources(argv), src, o);
    });

  addConfigOptions(image.command('cache'))
    .description("the image-volume cache: which images are cached on this host's backends, in which volumes, how recently used")
    .option('--host <host>', 'host, host@backend or host@backend#pool, matched as cinder does')
    .option('--all', 'every host, not only this one')
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { host?: string; all?: boolean; json?: boolean }) => {
      const { imageCacheCommand } = await import('./image.js');
      await imageCacheCommand(configSources(argv), o);
    });

  addConfigOptions(program.command('doctor'))
    .description('pre-flight: check what cinder.conf needs on this host, and say what to do about each failure')
    .option('--json', 'print JSON instead of text')
    .option('--no-broker', 'do not connect to the broker')
    .action(async (o: { json?: boolean; broker?: boolean }) => {
      const { doctorCommand } = await import('./doctor.js');
      await doctorCommand(configSources(argv), o);
    });

  addConfigOptions(program.command('log-level'))
    .description("show or set the running agent's log level (cinder's set_log_levels)")
    .argument('[level]', 'DEBUG, INFO, WARNING, ERROR or CRITICAL; omitted: show the levels')
    .option('--backend <name>', 'only this backend (section name or host@backend)')
    .option('--prefix <prefix>', 'logger name prefix, as cinder-manage service set_log --prefix')
    .option('--socket <path>', 'admin socket of the agent (default <state_path>/cinderblock/admin.sock)')
    .option('--json', 'print JSON instead of a table')
    .action(async (level: string | undefined, o: { backend?: string; prefix?: string; socket?: string; json?: boolean }) => {
      const { logLevelCommand } = await import('./logs.js');
      await logLevelCommand(configSources(argv), level, o);
    });

  addConfigOptions(program.command('logs'))
    .description("one request's log lines, from the journal or [DEFAULT] log_file")
    .requiredOption('--request-id <id>', 'request_id or global_request_id (req-…)')
    .option('--file <path>', 'read this log file instead')
    .option('--unit <unit>', 'systemd unit whose journal to read', 'cinderblock.service')
    .option('--since <time>', "journalctl --since (e.g. '1 hour ago')")
    .option('-f, --follow', 'keep printing the request\'s lines as they are written (Ctrl-C ends)')
    .option('--json', 'print the JSON lines')
    .action(async (o: { requestId: string; file?: string; unit?: string; since?: string; follow?: boolean; json?: boolean }) => {
      const { logsCommand } = await import('./logs.js');
      await logsCommand(configSources(argv), o);
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
