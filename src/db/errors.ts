// Errors of the database layer that are not cinder exceptions: the connection and the schema.
// Lookups that find nothing raise cinder's own exception classes from the catalog (src/errors.ts),
// so the manager lets them cross the RPC boundary unchanged.

/**
 * The database cannot be reached (oslo.db's DBConnectionError). `attempts` is how many connection
 * attempts were made before giving up.
 */
export class DatabaseConnectionError extends Error {
  readonly attempts: number;
  constructor(message: string, attempts: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DBConnectionError';
    this.attempts = attempts;
  }
}

/** The database is reachable but holds no Cinder schema (or one we cannot use). */
export class DatabaseSchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseSchemaError';
  }
}
