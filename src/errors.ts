// Errors that cross the RPC boundary. cinder's RPC client rebuilds an exception from the
// failure reply only when its module is in allowed_remote_exmods (cinder.exception) or builtins,
// so every error the agent means a caller to see carries cinder's own class name.

export interface CinderErrorOptions {
  /** cinder.exception class name, e.g. 'InvalidInput', 'VolumeNotFound'. */
  className: string;
  /** Module the caller rebuilds the class from; 'cinder.exception' unless it is a builtin. */
  module?: string;
  /** Keyword arguments cinder's exception class takes (reason=, volume_id=, ...). */
  kwargs?: Record<string, unknown>;
  cause?: unknown;
}

export class CinderError extends Error {
  readonly className: string;
  readonly module: string;
  readonly kwargs: Record<string, unknown>;

  constructor(message: string, opts: CinderErrorOptions) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = opts.className;
    this.className = opts.className;
    this.module = opts.module ?? 'cinder.exception';
    this.kwargs = opts.kwargs ?? {};
  }
}

/** cinder.exception.InvalidInput: "Invalid input received: %(reason)s" */
export function invalidInput(reason: string): CinderError {
  return new CinderError(`Invalid input received: ${reason}`, { className: 'InvalidInput', kwargs: { reason } });
}

export function volumeNotFound(volumeId: string): CinderError {
  return new CinderError(`Volume ${volumeId} could not be found.`, { className: 'VolumeNotFound', kwargs: { volume_id: volumeId } });
}

export function volumeBackendApiException(data: string): CinderError {
  return new CinderError(`Bad or unexpected response from the storage volume backend API: ${data}`, {
    className: 'VolumeBackendAPIException',
    kwargs: { data },
  });
}

/** Configuration problems stop start-up with a message naming file, section and option. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
