// A target helper whose daemon is watched (target-supervisor.ts): every export operation first
// makes sure the daemon may be used, and one that finds it gone midway has it probed (and
// restarted where the agent may) at once, then runs again: every helper operation is idempotent,
// so a new attach that meets a just-killed tgtd succeeds once tgtd is back instead of failing.
// The start-up sweep's reads (findExports, removeOrphanAccounts) never start a daemon: a backend
// that never exports never touches tgtd.
import type { TargetSupervisor } from './target-supervisor.js';
import type {
  ConnectionInfo,
  Connector,
  EnsureExportOptions,
  ExportedVolume,
  ExportModelUpdate,
  FoundExport,
  TargetHelper,
  TerminateOptions,
} from './target.js';

export class SupervisedTarget implements TargetHelper {
  constructor(
    readonly inner: TargetHelper,
    readonly supervisor: TargetSupervisor,
  ) {}

  private async run<T>(op: () => Promise<T>): Promise<T> {
    await this.supervisor.ready();
    try {
      return await op();
    } catch (err) {
      if (!this.supervisor.watch.isDaemonGone(err)) throw err;
      await this.supervisor.troubleNoticed();
      await this.supervisor.ready();
      return op();
    }
  }

  validateConnector(connector: Connector): void {
    this.inner.validateConnector(connector);
  }
  createExport(v: ExportedVolume): Promise<ExportModelUpdate> {
    return this.run(() => this.inner.createExport(v));
  }
  ensureExport(v: ExportedVolume, opts?: EnsureExportOptions): Promise<void> {
    return this.run(() => this.inner.ensureExport(v, opts));
  }
  removeExport(v: ExportedVolume): Promise<void> {
    return this.run(() => this.inner.removeExport(v));
  }
  initializeConnection(v: ExportedVolume, connector: Connector): Promise<ConnectionInfo> {
    return this.run(() => this.inner.initializeConnection(v, connector));
  }
  terminateConnection(v: ExportedVolume, connector: Connector | null, opts: TerminateOptions): Promise<void> {
    return this.run(() => this.inner.terminateConnection(v, connector, opts));
  }
  extendTarget(v: ExportedVolume): Promise<void> {
    return this.run(() => this.inner.extendTarget(v));
  }
  listExports(): Promise<string[]> {
    return this.run(() => this.inner.listExports());
  }
  async findExports(): Promise<FoundExport[]> {
    return this.inner.findExports ? this.inner.findExports() : [];
  }
  async removeOrphanAccounts(): Promise<number> {
    return this.inner.removeOrphanAccounts ? this.inner.removeOrphanAccounts() : 0;
  }
}
