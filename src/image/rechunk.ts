// Re-cuts a stream of arbitrary chunks (as HTTP delivers them) into chunks of one size, the last
// one shorter: every chunk then starts at a multiple of `size`, so zero-run detection works on
// whole filesystem blocks and the first chunk holds a whole image header.

export async function* rechunk(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let buf = Buffer.allocUnsafe(size);
  let fill = 0;
  for await (const piece of source) {
    let off = 0;
    while (off < piece.length) {
      const n = Math.min(size - fill, piece.length - off);
      piece.copy(buf, fill, off, off + n);
      fill += n;
      off += n;
      if (fill === size) {
        yield buf;
        // the consumer may still hold the previous buffer (an async write): never reuse it
        buf = Buffer.allocUnsafe(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}
