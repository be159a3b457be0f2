// `--server` pointed at a sidecar's Envoy admin port (15000) instead of the control plane's
// admin port (8080): an easy mix-up on a first day. Envoy answers 404 with its list of admin
// endpoints, which the operator commands printed whole (4 KB on one "line"); now one line says
// the server is not a control plane and which port to give. A real Envoy, the real CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-process.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { freePort } from '../support/ports.js';

describe('operator commands against a server that is not a control plane', () => {
  let envoy: EnvoyHandle;
  let server: string;

  beforeAll(async () => {
    const adminPort = await freePort();
    envoy = await startEnvoy({
      name: 'wrong-server',
      adminPort,
      bootstrapYaml: `admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: ${adminPort} }\n`,
    });
    server = `http://127.0.0.1:${adminPort}`;
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
  });

  it('status, tail, mesh and snapshot: one line naming the server and the port to use, exit 1', async () => {
    const commands = [
      ['status'],
      ['tail'],
      ['mesh'],
      ['snapshot', 'web-1'],
      ['route', 'explain', '--from', 'web', '--to', 'api', '--path', '/'],
    ];
    const results = await Promise.all(
      commands.map((args) => runCli([...args, '--server', server, '--token', 'a.b.c'])),
    );
    for (const [i, args] of commands.entries()) {
      expect(results[i]).toMatchObject({
        code: 1,
        stdout: '',
        stderr:
          `lucid-mesh ${args[0] === 'route' ? 'route explain' : args[0]}: ${server} is not a lucid-mesh control plane (HTTP 404, not its ` +
          "JSON): give --server the control plane's admin port (serve --admin-port, default " +
          "8080), not a sidecar's Envoy admin\n",
      });
    }
  });
});
