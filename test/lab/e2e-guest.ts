// The guest side of the lab's end-to-end suites: the agent's cinder.conf joining the stack the host
// hook serves (test/lab/e2e-stack.ts), from the guest.env it wrote.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const env = process.env;

/** Writes the agent's cinder.conf for `lvmType` under `work` and returns its path; `backendExtra` adds backend options. */
export async function writeE2eAgentConf(
  work: string,
  vg: string,
  lvmType: 'default' | 'thin',
  backendExtra: Record<string, string> = {},
  defaultsExtra: Record<string, string> = {},
): Promise<string> {
  const state = join(work, 'state');
  await mkdir(join(state, 'locks'), { recursive: true });
  const backendOpts = JSON.parse(env.CBLAB_E2E_BACKEND_OPTS ?? '{}') as Record<string, string>;
  const sections: Record<string, Record<string, string>> = {
    DEFAULT: {
      transport_url: env.CBLAB_E2E_TRANSPORT!,
      host: env.CBLAB_E2E_HOST!,
      enabled_backends: env.CBLAB_E2E_BACKEND!,
      state_path: state,
      my_ip: '127.0.0.1',
      // cinder-api/scheduler on the host count a service down after 10 s without a report
      report_interval: '2',
      // every report runs vgs/lvs (about a second each under emulation); deletes report at once
      backend_stats_polling_interval: '20',
      rpc_response_timeout: '60',
      ...defaultsExtra,
    },
    database: { connection: env.CBLAB_E2E_DB! },
    [env.CBLAB_E2E_BACKEND!]: {
      ...backendOpts,
      volume_group: vg,
      lvm_type: lvmType,
      // the lvm lab suite clears whole volumes; here the first 64 MiB keep deletes quick
      volume_clear: 'zero',
      volume_clear_size: '64',
      ...backendExtra,
    },
    oslo_concurrency: { lock_path: join(state, 'locks') },
    cinderblock: { metrics_listen: '' },
  };
  const conf = Object.entries(sections)
    .map(([name, o]) => `[${name}]\n${Object.entries(o).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`)
    .join('\n');
  const confPath = join(work, `cinder-${lvmType}.conf`);
  await writeFile(confPath, conf);
  return confPath;
}
