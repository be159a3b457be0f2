// A service with hundreds of instances asked of `serve --dns-port` with real dig: its SRV
// answer (~80 bytes per instance with the target's address) outgrows one TCP DNS message
// (64 KiB). It used to crash the whole control plane (a RangeError writing the length prefix).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  plainServeArgs,
  waitServeReady,
  spawnCli,
  type CliProcess,
} from '../support/cli-process.js';
import { dig } from '../support/dig.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';

const INSTANCES = 1500;

let file: CatalogFile;
let serve: CliProcess;
let dnsPort: number;
let adminPort: number;

beforeAll(async () => {
  file = new CatalogFile();
  file.write({
    services: [
      {
        name: 'huge',
        instances: Array.from({ length: INSTANCES }, (_, i) => ({
          id: `huge-instance-${i + 1}`,
          address: `10.${Math.floor(i / 250)}.${i % 250}.1`,
          port: 8080,
        })),
      },
    ],
  });
  let xdsPort: number;
  [dnsPort, adminPort, xdsPort] = (await freePorts(3)) as [number, number, number];
  serve = spawnCli(
    [
      ...plainServeArgs(file.path, { admin: adminPort, xds: xdsPort }),
      ...['--admin-auth', 'none', '--dns-port', String(dnsPort)],
    ],
    { LUCID_DATA_DIR: file.dir },
  );
  await waitServeReady(serve, adminPort, 'serve --dns-port to be ready');
}, 60_000);

afterAll(async () => {
  await serve?.stop(60_000);
  file?.remove();
});

describe('an answer larger than a TCP DNS message', () => {
  it('SRV over TCP: the records that fit in 64 KiB, each with its address; serve keeps running', async () => {
    const srv = await dig(dnsPort, '_huge._tcp.lucid.internal', 'SRV', ['+tcp']);
    expect(srv.status, srv.output.slice(0, 2000)).toBe('NOERROR');
    expect(srv.answers.length).toBeGreaterThan(400);
    expect(srv.answers.length).toBeLessThan(INSTANCES);
    const targets = srv.answers.map((a) => a.data.split(' ')[3]);
    const addressed = srv.additional.filter((a) => a.type === 'A').map((a) => a.name);
    expect(addressed.sort()).toEqual([...targets].sort());

    // UDP: too large, TC; dig's retry over TCP gets the same cut answer.
    const udp = await dig(dnsPort, '_huge._tcp.lucid.internal', 'SRV');
    expect(udp.output).toContain('Truncated, retrying in TCP mode');
    expect(udp.answers).toHaveLength(srv.answers.length);

    // A over TCP (1,500 addresses, ~34 bytes each) fits whole.
    const a = await dig(dnsPort, 'huge.lucid.internal', 'A', ['+tcp']);
    expect(a.answers).toHaveLength(INSTANCES);

    expect(serve.child.exitCode, serve.output().slice(-5000)).toBeNull();
    expect((await httpGet(`http://127.0.0.1:${adminPort}/ready`)).status).toBe(200);
  });
});
