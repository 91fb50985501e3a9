// Every method of cinder's VolumeAPI (cinder/volume/rpcapi.py, read from the installed cinder
// 21.3) must have a handler in the manager's method table, or be listed below as taken by another
// issue. A method cinder-api can send that nobody answers leaves its caller waiting (a call times
// out, a cast leaves a resource in a *-ing status forever), so a new one fails this test.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { VolumeManager } from '../../../src/manager/volume-manager.js';
import type { FlowDeps } from '../../../src/manager/flows/common.js';
import type { LogLevelControl } from '../../../src/manager/log-levels.js';
import type { VolumeService } from '../../../src/manager/volume-service.js';
import { SYSTEM_PYTHON } from '../../helpers/cinder-db.js';

/** Methods answered elsewhere (their own issues): none left. */
const TAKEN_BY_OTHER_ISSUES: Readonly<Record<string, string>> = {
};

// The method names VolumeAPI puts on the wire: its public methods, each sending its own name (and
// `failover` also `failover_host` when pinned below 3.8).
const LIST_METHODS = `
import inspect, json, re, warnings
warnings.simplefilter('ignore')
from cinder.volume import rpcapi
src = inspect.getsource(rpcapi.VolumeAPI)
public = sorted(n for n, f in inspect.getmembers(rpcapi.VolumeAPI, inspect.isfunction) if not n.startswith('_'))
sent = sorted(set(re.findall(r"cctxt\\.(?:call|cast)\\(\\s*\\w+,\\s*'(\\w+)'", src)) | {'failover_host'})
print(json.dumps({'public': public, 'sent': sent, 'version': rpcapi.VolumeAPI.RPC_API_VERSION}))
`;

describe.skipIf(!existsSync(SYSTEM_PYTHON))("every method of cinder's VolumeAPI has a handler", () => {
  it('walks rpcapi.VolumeAPI of the installed python3-cinder', async () => {
    const r = await execa(SYSTEM_PYTHON, ['-c', LIST_METHODS], { timeout: 60_000 });
    const { public: publicNames, sent, version } = JSON.parse(r.stdout) as { public: string[]; sent: string[]; version: string };
    expect(version).toBe('3.18');
    expect(publicNames).toHaveLength(48);
    // the table is built without touching its dependencies: only its keys are read here
    const manager = new VolumeManager({} as VolumeService, {} as LogLevelControl, {} as FlowDeps);
    const served = new Set(Object.keys(manager.methods()));
    const names = [...new Set([...publicNames, ...sent])].sort();
    const unanswered = names.filter((n) => !served.has(n) && !(n in TAKEN_BY_OTHER_ISSUES));
    expect(unanswered, `VolumeAPI methods with no handler: ${unanswered.join(', ')}`).toEqual([]);
    const stale = Object.keys(TAKEN_BY_OTHER_ISSUES).filter((n) => !names.includes(n));
    expect(stale, 'listed as taken by another issue but not a VolumeAPI method').toEqual([]);
  }, 90_000);
});
