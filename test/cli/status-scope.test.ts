// `lucid-mesh status` with a scoped sidecar (docs/scoping.md) against a real control plane and
// a real Envoy: a scope of many services is named in part (a policy scope may hold most of a
// mesh of thousands: one line per proxy of all of them made the table unreadable), with how
// many there are; --json has them all. `lucid-mesh mesh` lists the declared upstreams.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import type { ProxyRow } from '../../src/admin/proxies.js';
import { meshCommand } from '../../src/cli/mesh-command.js';
import { statusCommand } from '../../src/cli/status-command.js';
import { CatalogFile, startSidecar, startTestControlPlane, type Sidecar } from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { runCommand } from '../support/run-command.js';
import { waitFor } from '../support/wait.js';

const NAMES = Array.from({ length: 30 }, (_, i) => `s${String(i).padStart(2, '0')}`);

describe('lucid-mesh status: a large scope', () => {
  const file = new CatalogFile();
  let cp: RunningControlPlane;
  let web: Sidecar;
  let server: string;
  let bindPort: number;

  beforeAll(async () => {
    bindPort = await freePort();
    file.write({
      services: [
        ...NAMES.map((name) => ({ name, instances: [] })),
        {
          name: 'web',
          upstreams: [...NAMES.slice(1), { name: NAMES[0], localBindPort: bindPort }],
          instances: [],
        },
      ],
    });
    cp = await startTestControlPlane(file, {}, { mesh: { scope: 'declared' } });
    server = `http://127.0.0.1:${cp.adminPort}`;
    web = await startSidecar({
      nodeId: 'web-1',
      service: 'web',
      xdsPort: cp.xdsPort,
      mode: 'sotw',
    });
  }, 60_000);

  afterAll(async () => {
    await web?.envoy.stop();
    await cp?.stop();
    file.remove();
  });

  it('names the first 20 services and how many there are; --json lists all', async () => {
    const out = await waitFor(
      async () => {
        const r = await runCommand(statusCommand, ['--server', server]);
        return r.stdout.includes('web-1 scope') ? r : undefined;
      },
      { what: 'web-1 in status' },
    );
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(
      `web-1 scope (declared): ${NAMES.slice(0, 20).join(', ')} and 10 more (30 services; all of them: --json)\n`,
    );
    const json = await runCommand(statusCommand, ['--server', server, '--json']);
    const rows = (JSON.parse(json.stdout) as { proxies: ProxyRow[] }).proxies;
    expect(rows.find((r) => r.nodeId === 'web-1')?.scope).toEqual({
      from: 'declared',
      services: NAMES,
    });
  });

  it('lucid-mesh mesh shows the declared upstreams, with their bind addresses', async () => {
    const out = await runCommand(meshCommand, ['--server', server, '--service', 'web']);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(
      `\n  upstreams (declared): s00 @127.0.0.1:${bindPort}, ${NAMES.slice(1).join(', ')}\n`,
    );
  });
});
