// After a Consul outage that changed nothing in Consul, the control plane stops reporting it.
// The source's error is what `lucid-mesh status` lists under config problems (from
// /v1/config/errors) and /ready explains; it was cleared only by the next catalog the source
// delivered, and an unchanged catalog is not delivered again, so the outage was still reported
// (measured: 20 s after the agent answered again) until the next registration. Real Consul: a
// one-server agent with a data dir, stopped and started again with the same catalog.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import {
  consulTestSource,
  QUICK_DEBOUNCE,
  startSourceControlPlane,
} from '../support/source-control-plane.js';
import { waitFor } from '../support/wait.js';

let consul: ConsulAgent;
let cp: RunningControlPlane;
beforeAll(async () => {
  consul = await startConsul({ persistent: true });
  await consul.register({ ID: 'api-1', Name: 'api', Address: '127.0.0.1', Port: 9000 });
  cp = await startSourceControlPlane(consulTestSource(consul, 2000), QUICK_DEBOUNCE);
  await waitFor(() => cp.store.ready, { what: 'the first catalog from Consul' });
}, CONSUL_SETUP_TIMEOUT_MS);
afterAll(async () => {
  await cp?.stop();
  await consul?.remove();
});

interface Problem {
  kind: string;
  name: string;
  message: string;
}
const sourceProblems = async (): Promise<Problem[]> => {
  const res = await fetch(`http://127.0.0.1:${cp.adminPort}/v1/config/errors`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { problems: Problem[] }).problems.filter(
    (p) => p.kind === 'source',
  );
};

describe('a Consul outage that changed nothing', () => {
  it('is reported while Consul is down, and no longer once it answers again', async () => {
    expect(await sourceProblems()).toEqual([]);
    const version = cp.store.snapshot?.version;
    await consul.stop();
    const during = await waitFor(
      async () => {
        const p = await sourceProblems();
        return p.length > 0 ? p : undefined;
      },
      { what: 'the outage in /v1/config/errors', timeoutMs: 20_000 },
    );
    expect(during[0]).toMatchObject({
      name: 'consul',
      message: expect.stringMatching(/^consul: /),
    });

    await consul.start();
    await waitFor(async () => ((await sourceProblems()).length === 0 ? true : undefined), {
      what: 'the outage no longer reported once Consul answers again',
      timeoutMs: 15_000,
    });
    // Nothing changed in Consul: the same catalog, no new snapshot.
    expect(cp.store.snapshot?.version).toBe(version);
  }, 90_000);
});
