// An etcd cluster with one member down, as --etcd lists every member: register and deregister
// go to a member that answers. Each call went to one endpoint picked at random and failed when
// that was the dead one (4 of 6 registers with one of two endpoints down), so a one-shot command
// failed about as often as not exactly when the cluster's redundancy should carry it.
// Real etcd, a port where nothing listens as the dead member, the real CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-process.js';
import { startEtcd, type EtcdHandle } from '../support/etcd.js';
import { freePorts } from '../support/ports.js';

describe('register and deregister with one etcd endpoint down', () => {
  let etcd: EtcdHandle;
  let endpoints: string;

  beforeAll(async () => {
    etcd = await startEtcd('member-down');
    const [dead] = (await freePorts(1)) as [number];
    // The dead member both first and last, so either shuffled order starts with it at times.
    endpoints = [`http://127.0.0.1:${dead}`, etcd.endpoint, `http://127.0.0.1:${dead}`].join(',');
  }, 60_000);

  afterAll(async () => {
    await etcd?.remove();
  });

  it('every one of 8 registers and deregisters succeeds', async () => {
    const failures: string[] = [];
    for (let i = 1; i <= 8; i++) {
      const id = ['--service', 'web', '--id', `web-${i}`, '--etcd', endpoints];
      const reg = await runCli(['register', ...id, '--address', '10.0.0.5', '--port', '8080']);
      if (reg.code !== 0) failures.push(`register web-${i}: ${reg.stderr}`);
      const dereg = await runCli(['deregister', ...id]);
      if (dereg.code !== 0) failures.push(`deregister web-${i}: ${dereg.stderr}`);
    }
    expect(failures).toEqual([]);
    expect((await etcd.client.getAll().prefix('/lucid-mesh/').keys()).length).toBe(0);
  }, 120_000);
});
