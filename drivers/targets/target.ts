// The contract every target helper (tgt, LIO) offers the volume driver. A target helper
// turns a local block device or file into something a compute host can log in to, and it alone
// decides who may log in. It knows nothing of AMQP, oslo objects or the database: the manager hands
// it plain records and writes back what createExport returns.
//
// What the helper returns from initializeConnection is the target part of cinder's connection_info
// (targets/iscsi.py _get_iscsi_properties). The manager adds `encrypted`, `qos_specs`,
// `access_mode` and `cacheable` (manager.py _parse_connection_options / initialize_connection),
// and `discard` when the driver reports discard support; the helper never sets those keys.

/** os-brick's connector properties as nova sends them (only `initiator` matters to iSCSI). */
export interface Connector {
  initiator?: string;
  host?: string;
  ip?: string;
  multipath?: boolean;
  [k: string]: unknown;
}

export interface ExportedVolume {
  id: string;
  /** cinder's volume name, e.g. `volume-<uuid>`: the IQN is target_prefix + name. */
  name: string;
  providerLocation: string | null;
  /** `CHAP <user> <password>` or null */
  providerAuth: string | null;
  /** block device or file that backs the LUN */
  backingPath: string;
  multiattach: boolean;
}

/** Columns createExport asks the manager to store on the volume row. */
export interface ExportModelUpdate {
  provider_location: string;
  provider_auth: string;
}

export interface ConnectionInfo {
  /** target_protocol: `iscsi` or `iser` */
  driver_volume_type: string;
  data: Record<string, unknown>;
}

export interface TerminateOptions {
  /** force detach (cinder's force=True): with no connector, every initiator is cut off. */
  force?: boolean;
  /** another attachment of the same initiator still uses the export: leave its ACL in place. */
  keepAcl?: boolean;
}

export interface EnsureExportOptions {
  /**
   * Initiators that are attached right now according to the database (volume_attachment rows in
   * `attached`/`attaching` with a connector). When given, it replaces the helper's own record (the
   * persistent target file) as the list of initiators allowed to log in.
   */
  initiators?: readonly string[];
  /**
   * The same attachments' connectors, for helpers that admit something other than the iSCSI
   * initiator (nvmet admits the connector's `nqn`).
   */
  connectors?: readonly Connector[];
}

/** An export with this helper's target_prefix, found live on the target or in the helper's own record. */
export interface FoundExport {
  iqn: string;
  /** the volume name the IQN was made from (the IQN less target_prefix) */
  volumeName: string;
  /** what the live LUN or the record serves; null when neither says (a target left without LUN) */
  backingPath: string | null;
  /** the target exists on the daemon now */
  live: boolean;
  /** this helper recorded it (tgt: its target file or its CHAP account record; LIO: its record) */
  recorded: boolean;
  /**
   * Live only: the initiator names (iSCSI) or host NQNs (nvmet) the target admits by name. tgt's
   * address entries (`ALL`, a network) are not names and are left out: cinder's own tgt targets
   * admit ALL and rely on CHAP.
   */
  admitted?: string[];
}

export interface TargetHelper {
  /** Throws cinder's InvalidConnectorException ("Connector doesn't have required information: initiator"). */
  validateConnector(connector: Connector): void;
  /**
   * Create the target, its CHAP account and LUN. Idempotent; CHAP credentials are reused from
   * `providerAuth` when present, otherwise generated as cinder does.
   */
  createExport(v: ExportedVolume): Promise<ExportModelUpdate>;
  /** Recreate the export if it is missing or incomplete (after a tgtd or host restart). */
  ensureExport(v: ExportedVolume, opts?: EnsureExportOptions): Promise<void>;
  /** Remove the target, its account and its persistent record. Idempotent. */
  removeExport(v: ExportedVolume): Promise<void>;
  /** Allow `connector.initiator` to log in and return the target part of connection_info. */
  initializeConnection(v: ExportedVolume, connector: Connector): Promise<ConnectionInfo>;
  /**
   * Refuse `connector.initiator` from now on and close its sessions, unless `keepAcl` says
   * another attachment of the same initiator still needs it.
   */
  terminateConnection(v: ExportedVolume, connector: Connector | null, opts: TerminateOptions): Promise<void>;
  /** Make a grown backing device's new size visible to initiators. */
  extendTarget(v: ExportedVolume): Promise<void>;
  /** IQNs this helper manages (those starting with target_prefix), for reconcile/orphan cleanup. */
  listExports(): Promise<string[]>;
  /**
   * For the start-up sweep of what a crash left: every export with our target_prefix, live or
   * recorded. Never starts a daemon: with none running, only the record is listed.
   */
  findExports?(): Promise<FoundExport[]>;
  /**
   * Delete the CHAP accounts this helper created (and recorded before creating them) that no
   * target uses any more: what a crash between creating an account and binding it leaves.
   * Other owners' accounts are never touched. Returns how many went.
   */
  removeOrphanAccounts?(): Promise<number>;
}
