// cinder-manage's `service get_log` / `set_log` reach a volume service as get_log_levels and
// set_log_levels. cinder answers with Python logger names and level names; our loggers are pino's,
// so we expose the agent's root logger under its name and translate the level vocabulary.
import type { Logger } from '../log.js';

const TO_PYTHON: Record<string, string> = { trace: 'DEBUG', debug: 'DEBUG', info: 'INFO', warn: 'WARNING', error: 'ERROR', fatal: 'CRITICAL', silent: 'CRITICAL' };
const FROM_PYTHON: Record<string, string> = { DEBUG: 'debug', INFO: 'info', WARNING: 'warn', WARN: 'warn', ERROR: 'error', CRITICAL: 'fatal', FATAL: 'fatal' };

export class LogLevelControl {
  constructor(
    private readonly logger: Logger,
    private readonly name = 'cinderblock',
    /**
     * Loggers made from `logger` before the change (each backend's): pino copies a level into a
     * child when it is made, so a later change of the root alone leaves their lines as they were.
     */
    private readonly followers: () => readonly Logger[] = () => [],
  ) {}

  /** {logger name: level name} for loggers whose name starts with prefix (None/'' = all). */
  get(prefix: string | null | undefined): Record<string, string> {
    const p = prefix ?? '';
    return this.name.startsWith(p) ? { [this.name]: TO_PYTHON[this.logger.level] ?? 'INFO' } : {};
  }

  set(prefix: string | null | undefined, level: string | null | undefined): void {
    const p = prefix ?? '';
    if (!this.name.startsWith(p) || !level) return;
    const pinoLevel = FROM_PYTHON[level.toUpperCase()];
    if (!pinoLevel) throw new Error(`unknown log level ${level}: use DEBUG, INFO, WARNING, ERROR or CRITICAL`);
    this.logger.level = pinoLevel;
    for (const f of this.followers()) f.level = pinoLevel;
    this.logger.info(`log level set to ${level.toUpperCase()} by set_log_levels`);
  }
}
