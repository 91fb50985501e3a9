// The RPC endpoint of one backend: cinder.volume.manager.VolumeManager's methods by name, at
// RPC API version 3.18. Arguments arrive decoded (oslo objects as VersionedObject) and are
// checked by each method's schema (rpc-arguments.ts) before the method runs, so nothing
// unchecked reaches a flow or a driver. The flows themselves live in ./flows, one file per
// family, each writing cinder's database rows and status transitions.
import { driverNotInitialized } from '../errors.js';
import { VersionedObject } from '../rpc/ovo.js';
import { standardCapabilityProperties } from './capabilities.js';
import { FLOW_METHODS } from './flow-methods.js';
import { initHost, type InitHostReport } from './flows/init-host.js';
import type { FlowDeps } from './flows/common.js';
import type { ExportRestore } from './flows/export-restore.js';
import type { LogLevelControl } from './log-levels.js';
import { typedMethods } from './rpc-arguments.js';
import type { VolumeService } from './volume-service.js';

export type Handler = (ctx: Record<string, unknown>, args: Record<string, unknown>) => unknown | Promise<unknown>;

export const VOLUME_RPC_API_VERSION = '3.18';


export class VolumeManager {
  readonly version = VOLUME_RPC_API_VERSION;

  constructor(
    private readonly service: VolumeService,
    private readonly logLevels: LogLevelControl,
    /** The volume flows' dependencies; without them only the service methods are served. */
    private readonly flows?: FlowDeps,
  ) {}

  /** Method table handed to the RPC server; every method has its schema in rpc-arguments.ts. */
  methods(): Record<string, Handler> {
    const base = typedMethods({
      get_capabilities: () => this.getCapabilities(),
      secure_file_operations_enabled: () => this.service.driver.secureFileOperationsEnabled(),
      publish_service_capabilities: () => this.service.publishServiceCapabilities(),
      get_log_levels: (_ctx, args) => this.getLogLevels(args.log_request),
      set_log_levels: (_ctx, args) => this.setLogLevels(args.log_request),
    });
    const d = this.flows;
    if (!d) return base;
    const flows: Record<string, Handler> = {};
    for (const [name, method] of Object.entries(FLOW_METHODS)) flows[name] = (ctx, kwargs) => method(d, ctx, kwargs);
    return { ...base, ...flows };
  }

  /**
   * init_host's recovery: call once the service row exists, before consuming RPCs. With
   * `restore`, the exports are restored on it in the background (report.restored says when).
   */
  async initHost(restore?: ExportRestore): Promise<InitHostReport | null> {
    if (!this.flows || !this.service.driverInitialized) return null;
    return initHost(this.flows, restore);
  }

  private async getCapabilities(): Promise<Record<string, unknown>> {
    if (!this.service.driverInitialized) throw driverNotInitialized(this.service.driver.className);
    // driver.init_capabilities: the driver's stats plus cinder's standard properties.
    const stats = await this.service.driver.getVolumeStats();
    return { ...stats, properties: standardCapabilityProperties() };
  }

  private getLogLevels(request: VersionedObject): VersionedObject {
    const prefix = logRequestField(request, 'prefix');
    const levels = this.logLevels.get(prefix);
    const objects = Object.entries(levels).map(([p, level]) => new VersionedObject('LogLevel', { prefix: p, level }));
    return new VersionedObject('LogLevelList', { objects });
  }

  private setLogLevels(request: VersionedObject): void {
    this.logLevels.set(logRequestField(request, 'prefix'), logRequestField(request, 'level'));
  }
}

/** A LogLevel field; anything but a string reads as unset (cinder's None: every prefix). */
function logRequestField(request: VersionedObject, field: 'prefix' | 'level'): string | null {
  const v = request.get(field);
  return typeof v === 'string' ? v : null;
}
