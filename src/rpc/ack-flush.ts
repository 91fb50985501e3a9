// Waiting until an ack has left the process.
//
// amqplib 0.10 writes a frame in two hops, neither synchronous (node_modules/amqplib/lib):
//  1. Channel#ack → Connection#sendMethod encodes the frame and writes it into the channel's own
//     PassThrough buffer (connection.js sendMethod; freshChannel creates one per channel);
//  2. the connection's Mux copies buffered frames to the socket from a setImmediate callback
//     (mux.js _scheduleRead → _readIncoming → out.write), and net.Socket#write hands them to the
//     kernel (at once when the socket is not congested, else once it drains).
// So right after ch.ack() the ack is still in this process. If the event loop then blocks (a
// handler, or anything it logs, hogs the CPU) the frame is never written, and after a kill -9 the
// broker redelivers the message to the next agent, which blocks the same way (issue 10).
// Once the frame is in the kernel, a killed process does not lose it: the kernel still sends it,
// and the broker handles frames in order, so the ack lands before the connection's close.
import { setImmediate as turn } from 'node:timers/promises';
import type { Channel } from 'amqplib';

interface AmqplibChannelInternals {
  ch?: unknown;
  connection?: {
    stream?: { writableLength?: number; destroyed?: boolean };
    channels?: Array<{ buffer?: { readableLength?: number } } | undefined>;
  };
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Resolves true once every frame `ch` has buffered (an ack just sent among them) was handed to
 * the kernel; false when the socket closed first or `timeoutMs` passed (congestion).
 */
export async function framesFlushed(ch: Channel, timeoutMs: number): Promise<boolean> {
  const internals = ch as unknown as AmqplibChannelInternals;
  const stream = internals.connection?.stream;
  const buffer = typeof internals.ch === 'number' ? internals.connection?.channels?.[internals.ch]?.buffer : undefined;
  if (!stream || typeof stream.writableLength !== 'number' || !buffer || typeof buffer.readableLength !== 'number') {
    // amqplib's internals moved: the two hops above take one nextTick and one setImmediate, and
    // a setImmediate queued after ours runs in the same round, so two rounds cover both.
    await turn();
    await turn();
    return true;
  }
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; buffer.readableLength > 0 || stream.writableLength > 0; round++) {
    if (stream.destroyed) return false;
    if (Date.now() >= deadline) return false;
    // a few rounds of the loop are all an idle socket needs; after that the kernel is pushing
    // back, so poll gently instead of spinning
    if (round < 8) await turn();
    else await pause(5);
  }
  return true;
}
