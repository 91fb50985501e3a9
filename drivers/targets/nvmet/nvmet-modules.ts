// The kernel modules the nvmet helper needs, loaded at first use when they are not there:
// `nvmet` makes /sys/kernel/config/nvmet appear; `nvmet-tcp` is the transport a tcp port binds
// (the kernel would request it when the first subsystem is linked to the port, but a failure
// there surfaces as an EINVAL on a symlink; loading it up front gives a clear message instead).
// modprobe runs through the one process runner, with an argument array.
import { volumeDriverException } from '../../../src/errors.js';
import { CommandError, type CommandRunner } from '../../../src/exec/run-command.js';
import { log } from '../../../src/log.js';

/** module name as /sys/module shows it, and as modprobe takes it */
const MODULES: ReadonlyArray<readonly [string, string]> = [
  ['nvmet', 'nvmet'],
  ['nvmet_tcp', 'nvmet-tcp'],
];

export interface NvmetModulesOptions {
  runner: CommandRunner;
  /** true when /sys/module/<name> exists; injectable for tests */
  loaded: (name: string) => Promise<boolean>;
  /** true when the nvmet configfs root exists */
  rootPresent: () => Promise<boolean>;
}

/** Loads what is missing, once; the next call after a failure tries again. */
export class NvmetModules {
  private ready: Promise<void> | null = null;

  constructor(private readonly o: NvmetModulesOptions) {}

  ensure(): Promise<void> {
    this.ready ??= this.load().catch((e: unknown) => {
      this.ready = null;
      throw e;
    });
    return this.ready;
  }

  private async load(): Promise<void> {
    for (const [sysName, modName] of MODULES) {
      if (await this.o.loaded(sysName)) continue;
      const argv = ['modprobe', modName];
      const r = await this.o.runner(argv);
      if (r.exitCode !== 0) {
        const err = new CommandError(argv, r);
        throw volumeDriverException(`target_helper = nvmet needs the kernel module ${modName} and it could not be loaded (${err.message}); install the kernel's nvmet modules or load them before starting the agent`);
      }
      log().info({ module: modName }, 'nvmet: kernel module loaded');
    }
    if (!(await this.o.rootPresent())) {
      throw volumeDriverException('target_helper = nvmet: /sys/kernel/config/nvmet is missing after loading nvmet; is configfs mounted on /sys/kernel/config?');
    }
  }
}
