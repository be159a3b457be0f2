// deregister given the wrong --service (the instance is registered under another one) deletes
// nothing, exits 0 as documented, and now says where the id is registered and how to remove it.
// It said only 'was not registered', so the instance stayed in the mesh while its operator took
// it for gone. Real etcd, the real CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-process.js';
import { startEtcd, type EtcdHandle } from '../support/etcd.js';

describe('deregister with the wrong --service', () => {
  let etcd: EtcdHandle;

  beforeAll(async () => {
    etcd = await startEtcd('deregister-wrong');
    await etcd.client
      .put('/lucid-mesh/services/api/api-1')
      .value('{"address":"10.0.0.6","port":9090}');
  }, 60_000);

  afterAll(async () => {
    await etcd?.remove();
  });

  it('names the service the id is registered in; an unknown id says only that', async () => {
    const wrong = await runCli([
      'deregister',
      '--service',
      'web',
      '--id',
      'api-1',
      '--etcd',
      etcd.endpoint,
    ]);
    expect(wrong.code, wrong.stderr).toBe(0);
    expect(wrong.stdout).toBe(
      'api-1 (service web) was not registered (no key /lucid-mesh/services/web/api-1); it is ' +
        'registered in service api (/lucid-mesh/services/api/api-1): deregister it with --service api\n',
    );
    expect(await etcd.client.get('/lucid-mesh/services/api/api-1').string()).not.toBeNull();

    const unknown = await runCli([
      'deregister',
      '--service',
      'web',
      '--id',
      'nope',
      '--etcd',
      etcd.endpoint,
    ]);
    expect(unknown.stdout).toBe(
      'nope (service web) was not registered (no key /lucid-mesh/services/web/nope)\n',
    );
  });
});
