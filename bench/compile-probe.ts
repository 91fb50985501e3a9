// A bench's RSS probe compiled by tsc and run by plain node, as the agent runs (tsx's loader alone
// adds ~40 MiB to a process). Used by the copy and image benches; the output goes under the repo
// (tmp/) so that node_modules resolves from the compiled files.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** Compiles `source` (a path under `root`) into `outDir`; returns the compiled file's path. */
export function compileProbe(root: string, outDir: string, source: string): string {
  execFileSync(
    process.execPath,
    [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--outDir', outDir, '--rootDir', root, '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
      '--target', 'ES2022', '--skipLibCheck', '--types', 'node', source],
    { stdio: 'inherit' },
  );
  return path.join(outDir, path.relative(root, source).replace(/\.ts$/, '.js'));
}
