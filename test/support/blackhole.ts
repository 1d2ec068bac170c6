/**
 * A loopback port whose connections never complete: a listener with a full accept queue whose
 * owner never accepts (a worker thread blocked in Atomics.wait). The kernel drops further SYNs,
 * so a connect hangs in SYN_SENT, like an upstream behind a black-holing firewall.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';

const LISTENER = `
const { parentPort, workerData } = require('node:worker_threads');
const server = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  parentPort.postMessage(server.address().port);
  parentPort.once('message', () => {
    parentPort.postMessage('blocked');
    Atomics.wait(workerData, 0, 0);
    server.close();
  });
});`;

/** Connections that fill the accept queue (Linux keeps backlog + 1; extra ones just hang). */
const FILLERS = 8;

export interface Blackhole {
  url: string;
  close(): Promise<void>;
}

export async function startBlackhole(): Promise<Blackhole> {
  const release = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(LISTENER, { eval: true, workerData: release });
  const [port] = (await once(worker, 'message')) as [number];
  worker.postMessage('block');
  await once(worker, 'message');
  const fillers: Socket[] = [];
  const connected: Promise<unknown>[] = [];
  for (let i = 0; i < FILLERS; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
    if (i < 2) connected.push(once(socket, 'connect'));
  }
  await Promise.all(connected);
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      for (const socket of fillers) socket.destroy();
      Atomics.store(release, 0, 1);
      Atomics.notify(release, 0);
      await worker.terminate();
    },
  };
}
