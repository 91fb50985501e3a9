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
