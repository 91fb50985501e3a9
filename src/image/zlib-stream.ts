// An async byte source through a zlib transform (gzip, gunzip), as an async iterable whose reader
// sees the source's failure too: a download or a read that breaks must fail the stream built on it,
// not leave the transform waiting for more input.
import { Readable, type Transform } from 'node:stream';

export function throughZlib(source: AsyncIterable<Buffer>, transform: Transform): { output: AsyncIterable<Buffer>; close(): void } {
  const input = Readable.from(source);
  input.on('error', (err) => transform.destroy(err));
  input.pipe(transform);
  return {
    output: transform as AsyncIterable<Buffer>,
    close: () => {
      input.destroy();
      transform.destroy();
    },
  };
}
