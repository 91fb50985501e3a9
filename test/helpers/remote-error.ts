// What an RPC call that must fail came back with: the RemoteError (cinder's exception class and
// message as oslo.messaging carries them), or the test fails when the call succeeded.
import { RemoteError } from '../../src/rpc/client.js';

export async function remoteError(p: Promise<unknown>): Promise<RemoteError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RemoteError) return err;
    throw err;
  }
  throw new Error('expected a failure reply');
}
