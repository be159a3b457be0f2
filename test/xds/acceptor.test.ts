// The xDS port's acceptor (src/xds/http2-transport/acceptor.ts): connections are accepted at
// once and handed on a slice at a time, in order, with I/O let through between slices, so a
// storm's connections leave the kernel's accept queue while their sessions are still being set
// up; the ones still waiting at shutdown are closed.
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Acceptor } from '../../src/xds/http2-transport/acceptor.js';
import { waitFor } from '../support/wait.js';

const opened: net.Socket[] = [];
let acceptor: Acceptor | undefined;

afterEach(() => {
  for (const s of opened.splice(0)) s.destroy();
  acceptor?.dropWaiting();
  acceptor?.server.close();
  acceptor = undefined;
});

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // a session set up slowly
  }
}

async function listening(a: Acceptor): Promise<number> {
  await new Promise<void>((resolve) => a.server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return (a.server.address() as net.AddressInfo).port;
}

describe('Acceptor', () => {
  it('hands 100 connections on in order, in slices with I/O in between', async () => {
    const handed: number[] = [];
    const turns: number[] = []; // hand-offs done when each interleaved callback ran
    acceptor = new Acceptor((socket) => {
      busy(2);
      handed.push(socket.remotePort!);
    });
    const port = await listening(acceptor);
    const clientPorts: number[] = [];
    for (let i = 0; i < 100; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.once('connect', () => clientPorts.push(s.localPort!));
      opened.push(s);
    }
    const probe = setInterval(() => turns.push(handed.length), 1);
    await waitFor(() => handed.length === 100, {
      what: '100 connections handed on',
      timeoutMs: 10_000,
      intervalMs: 5,
    });
    clearInterval(probe);
    expect(new Set(handed)).toEqual(new Set(clientPorts));
    // 2 ms each, at most ~10 ms a slice: timers ran between slices, so the hand-offs were
    // seen part done several times (not all 100 in one blocking turn).
    const partial = turns.filter((n) => n > 0 && n < 100);
    expect(new Set(partial).size).toBeGreaterThanOrEqual(5);
    expect(acceptor.waiting).toBe(0);
  });

  it('while connections keep coming, accepts them ahead of setting them up; drops the waiting', async () => {
    let handedOn = 0;
    acceptor = new Acceptor(() => handedOn++);
    const port = await listening(acceptor);
    const closed: boolean[] = [];
    for (let i = 0; i < 300; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.on('close', () => closed.push(true));
      opened.push(s);
    }
    // libuv accepts one connection a turn: many waiting means turns went to accepting them.
    await waitFor(() => handedOn >= 1 && acceptor!.waiting > 10, {
      what: 'some handed on, more than 10 waiting',
      timeoutMs: 5_000,
      intervalMs: 1,
    });
    const waiting = acceptor.waiting;
    acceptor.dropWaiting();
    expect(acceptor.waiting).toBe(0);
    await waitFor(() => closed.length >= waiting, {
      what: `the ${waiting} waiting connections closed`,
      timeoutMs: 5_000,
      intervalMs: 5,
    });
  });
});
