// A TCP port on 127.0.0.1 that nothing listens on at the moment of asking, for a service a test
// starts a moment later (cinder-api, a fake server). Two runs at once must not share a fixed port:
// the second one's requests would reach the first one's service.
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}
