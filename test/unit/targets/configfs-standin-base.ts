// What the LIO and nvmet configfs STAND-INS share (lio/configfs-standin.ts, nvmet/nvmet-standin.ts):
// a temp directory behind a ConfigfsIo, mkdir making the object's default groups and attribute
// files as the kernel does, rmdir refused (ENOTEMPTY) while user-made children remain, an operation
// log and failure injection. Each subclass says which defaults an object gets, when a default group
// still blocks removal, and which writes and links the kernel would refuse. It is not configfs.
import * as fsp from 'node:fs/promises';
import { join, relative } from 'node:path';
import { direntKind, type ConfigfsIo } from '../../../drivers/targets/lio/configfs.js';

export type Op = 'mkdir' | 'rmdir' | 'writeFile' | 'symlink' | 'unlink';

/** The groups and attribute files (path relative to the object, initial value) an object gets. */
export interface DefaultGroups {
  dirs: string[];
  files: Record<string, string>;
}

export function errnoError(code: string, path: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${path}`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

export abstract class ConfigfsStandInBase {
  readonly log: string[] = [];
  /** return an errno code to fail that call (after logging it as `!op path`) */
  failOn: ((op: Op, rel: string) => string | null) | null = null;
  /** per directory made through mkdir: the names of the defaults made with it */
  protected readonly auto = new Map<string, Set<string>>();

  constructor(readonly root: string) {}

  /** The defaults the kernel makes with the object at `rel` (relative to the root); null for none. */
  protected abstract defaultsFor(rel: string): DefaultGroups | null;
  /** Whether the default group `dir` still holds something that makes its parent's rmdir fail. */
  protected abstract defaultGroupBlocks(dir: string): Promise<boolean>;
  /** Throws what the kernel would refuse writing `data` to `p`. */
  protected async refuseWrite(_p: string, _data: string): Promise<void> {}
  /** Throws what the kernel would refuse linking at `p`. */
  protected async refuseLink(_target: string, _p: string): Promise<void> {}

  rel(p: string): string {
    return relative(this.root, p);
  }

  protected check(op: Op, p: string): void {
    const code = this.failOn?.(op, this.rel(p)) ?? null;
    if (code) {
      this.log.push(`!${op} ${this.rel(p)}`);
      throw errnoError(code, p);
    }
    this.log.push(`${op} ${this.rel(p)}`);
  }

  readonly io: ConfigfsIo = {
    mkdir: async (p) => {
      this.check('mkdir', p);
      await fsp.mkdir(p);
      const d = this.defaultsFor(this.rel(p));
      const names = new Set<string>();
      for (const dir of d?.dirs ?? []) {
        await fsp.mkdir(join(p, dir));
        names.add(dir);
      }
      for (const [f, v] of Object.entries(d?.files ?? {})) {
        await fsp.writeFile(join(p, f), `${v}\n`);
        names.add(f.split('/')[0]!);
      }
      this.auto.set(p, names);
    },
    rmdir: async (p) => {
      this.check('rmdir', p);
      const names = this.auto.get(p) ?? new Set<string>();
      const blocking: string[] = [];
      for (const c of await fsp.readdir(p)) {
        if (!names.has(c)) blocking.push(c);
        else if ((await fsp.lstat(join(p, c))).isDirectory() && (await this.defaultGroupBlocks(join(p, c)))) blocking.push(`${c}/…`);
      }
      if (blocking.length > 0) throw errnoError('ENOTEMPTY', `${p} (${blocking.join(',')})`);
      await fsp.rm(p, { recursive: true });
      this.auto.delete(p);
    },
    writeFile: async (p, d) => {
      this.check('writeFile', p);
      await this.refuseWrite(p, d);
      await fsp.writeFile(p, d);
    },
    readFile: (p) => fsp.readFile(p, 'utf8'),
    // configfs lists attribute files next to groups too; the layers filter by kind, as on the real thing
    readdir: (p) => fsp.readdir(p),
    entries: async (p) => (await fsp.readdir(p, { withFileTypes: true })).map((d) => ({ name: d.name, kind: direntKind(d) })),
    symlink: async (t, p) => {
      this.check('symlink', p);
      await this.refuseLink(t, p);
      await fsp.symlink(t, p);
    },
    unlink: async (p) => {
      this.check('unlink', p);
      await fsp.unlink(p);
    },
    readlink: (p) => fsp.readlink(p),
    kind: async (p) => {
      try {
        return direntKind(await fsp.lstat(p));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
  };
}
