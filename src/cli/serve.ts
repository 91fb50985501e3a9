// `cinderblock serve`: read cinder.conf, start every backend's volume service, tell systemd when
// ready, and on SIGTERM stop taking messages, finish what is in flight, then exit.
import { loadConfig, type ConfigSourceArg } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { createLogger, setRootLogger } from '../log.js';
import { startAgent, StartCancelled, type Agent } from '../agent/agent.js';
import { AgentMetrics, serveMetrics } from '../metrics.js';
import { notifyReady, notifyStatus, notifyStopping, notifyWatchdog, watchdogIntervalMs } from '../native/index.js';

export async function serve(sources: ConfigSourceArg[]): Promise<void> {
  let config;
  try {
    config = await loadConfig({ sources });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`cinderblock: configuration error: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  const logger = createLogger({ level: config.default.debug ? 'debug' : 'info' });
  setRootLogger(logger);
  logger.info({ files: config.files, backends: config.backends.map((b) => b.host) }, 'cinderblock starting');

  const metrics = new AgentMetrics();
  if (config.cinderblock.metrics_listen) {
    try {
      await serveMetrics(metrics, config.cinderblock.metrics_listen);
      logger.info(`metrics on http://${config.cinderblock.metrics_listen}/metrics`);
    } catch (err) {
      // Metrics are for operators; a taken port must not keep the volume service down.
      logger.error({ err }, `cannot serve metrics on ${config.cinderblock.metrics_listen}; continuing without them`);
    }
  }

  let stopping: Promise<void> | undefined;
  // A signal during start-up cancels it: startAgent stops what it has started and rejects.
  const cancelStart = new AbortController();
  const starting = startAgent(config, { logger, metrics, signal: cancelStart.signal });
  const shutdown = (signal: string) => {
    if (stopping) {
      logger.warn(`${signal} again while stopping; exiting now`);
      process.exit(1);
    }
    logger.info(`${signal} received: no new requests; finishing those in flight`);
    notifyStopping();
    cancelStart.abort();
    stopping = starting.then(
      (agent) => agent.stop(),
      (err: unknown) => {
        if (!(err instanceof StartCancelled)) throw err;
      },
    ).then(
      () => {
        logger.info('cinderblock stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  let agent: Agent;
  try {
    agent = await starting;
  } catch (err) {
    if (stopping) return; // the signal handler reports and exits
    throw err;
  }
  if (stopping) return;

  notifyReady();
  notifyStatus(`serving ${agent.backends.map((b) => b.backend.host).join(', ')}`);
  const watchdog = watchdogIntervalMs();
  if (watchdog) {
    // Pinged from the event loop itself: a wedged loop stops the pings and systemd restarts us.
    setInterval(() => notifyWatchdog(), Math.max(1000, watchdog / 2)).unref();
  }
  logger.info(`cinderblock serving ${agent.backends.length} backend(s)`);
  // Keep the process alive: the AMQP sockets do, but say so explicitly.
  setInterval(() => undefined, 1 << 30);
}
