// `cinderblock config show`: the effective configuration, each value with the file and line it
// came from (or "default"), secrets masked. The first thing to run when the agent does not do
// what cinder.conf seems to say.
import { loadConfig, type ConfigSourceArg } from '../config/index.js';

export async function showConfig(sources: ConfigSourceArg[]): Promise<void> {
  const config = await loadConfig({ sources });
  const rows = config.sources();
  const width = Math.max(...rows.map((r) => `[${r.group}] ${r.option}`.length));
  process.stdout.write(`# files read (lowest precedence first): ${config.files.join(', ') || '(none)'}\n`);
  for (const r of rows) {
    const key = `[${r.group}] ${r.option}`.padEnd(width);
    process.stdout.write(`${key} = ${JSON.stringify(r.value)}    # ${r.source}\n`);
  }
}
