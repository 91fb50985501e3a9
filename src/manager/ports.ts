// What the service lifecycle needs from the layers below it, stated as narrowly as possible so
// the manager can be read (and tested) without the database or the broker in mind.

export interface ServiceRecord {
  id: number;
  uuid: string;
  host: string;
}

/** The services row of one backend: written at start, heartbeat every report_interval. */
export interface ServiceRegistry {
  register(): Promise<ServiceRecord>;
  /** Heartbeat; a row deleted under us is written again (as cinder does), hence the record back. */
  reportState(record: ServiceRecord): Promise<ServiceRecord>;
}

/** cinder.scheduler.rpcapi.SchedulerAPI: the two casts a volume service sends. */
export interface SchedulerNotifier {
  updateServiceCapabilities(args: { host: string; capabilities: Record<string, unknown>; clusterName: string | null }): Promise<void>;
  notifyServiceCapabilities(args: { backend: string; capabilities: Record<string, unknown> }): Promise<void>;
}

/** GiB allocated to volumes of this backend, per pool (cinder's _count_allocated_capacity). */
export interface AllocatedCapacitySource {
  allocatedGbByPool(backendHost: string): Promise<Map<string, number>>;
}

/**
 * cinder's compute.API as far as the volume service uses it: nova's external events. Each method
 * says whether nova took the events; it never throws (nova down, refusing, misconfigured: false).
 * Built in the composition root from [nova] (src/nova/).
 */
export interface ComputeEvents {
  /** volume-extended for each server (microversion 2.51), after an in-use extend. */
  volumeExtended(ctx: Record<string, unknown>, serverIds: ReadonlyArray<string | null>, volumeId: string): Promise<boolean>;
  /** volume-reimaged for each server (microversion 2.93), after a reimage of a reserved volume. */
  volumeReimaged(ctx: Record<string, unknown>, serverIds: ReadonlyArray<string | null>, volumeId: string): Promise<boolean>;
}

/** cinder.backup.rpcapi.BackupAPI as the volume service uses it: the answer to get_backup_device. */
export interface BackupCallback {
  /** continue_backup cast to the backup's host (topic cinder-backup), with the BackupDeviceInfo. */
  continueBackup(ctx: Record<string, unknown>, backup: unknown, backupDevice: unknown): Promise<void>;
}
