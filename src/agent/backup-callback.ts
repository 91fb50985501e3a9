// cinder.backup.rpcapi.BackupAPI.continue_backup over the RPC client: a cast to topic
// cinder-backup, server backup.host, sent as message version 2.0 (BackupAPI's
// RPC_DEFAULT_VERSION: cinder 21.3 sends continue_backup, added in 2.3, at 2.0 all the same).
import type { RpcClient } from '../rpc/client.js';
import type { BackupCallback } from '../manager/ports.js';
import { VersionedObject } from '../rpc/ovo.js';

export const BACKUP_TOPIC = 'cinder-backup';

export class RpcBackupCallback implements BackupCallback {
  constructor(private readonly client: RpcClient) {}

  async continueBackup(ctx: Record<string, unknown>, backup: unknown, backupDevice: unknown): Promise<void> {
    const host = backup instanceof VersionedObject ? backup.get<string | null>('host') : null;
    if (!host) throw new Error('continue_backup: the backup names no host to continue on');
    await this.client.cast({ topic: BACKUP_TOPIC, server: host }, 'continue_backup', { backup, backup_device: backupDevice }, ctx, '2.0');
  }
}
