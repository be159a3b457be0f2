// compose/ha.yml (three replicas sharing the CA through Consul KV, on top of
// docker-compose.yml): every replica reads its state from the compose Consul with the sealed-key
// secret, drains within its stop grace period, and sets only variables `serve` reads.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { serveCommand } from '../../src/cli/serve-command.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
type Obj = Record<string, unknown>;
const compose = parse(readFileSync(join(ROOT, 'compose', 'ha.yml'), 'utf8'), {
  merge: true,
}) as { services: Record<string, Obj>; secrets: Record<string, { file: string }> };
const base = parse(readFileSync(join(ROOT, 'compose', 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, Obj>;
};
const known = new Set([
  ...serveCommand().options.flatMap((o) => (o.envVar ? [o.envVar] : [])),
  'NODE_OPTIONS',
]);
const replicas = ['lucid-mesh', 'lucid-mesh-2', 'lucid-mesh-3'];
/** A replica as compose sees it: the base file's service with the override merged in. */
const merged = (name: string): Obj => {
  const over = compose.services[name]!;
  const under = base.services[name] ?? {};
  return {
    ...under,
    ...over,
    environment: { ...(under.environment as Obj), ...(over.environment as Obj) },
  };
};
const seconds = (text: unknown): number => Number(/^(\d+)s$/.exec(String(text))?.[1] ?? NaN);

describe('compose/ha.yml', () => {
  it('runs three replicas and a Consul for their state', () => {
    for (const name of [...replicas, 'consul']) expect(compose.services[name]).toBeDefined();
    expect(String(compose.services.consul!.image)).toMatch(/^hashicorp\/consul:/);
  });

  it.each(replicas)('%s keeps the CA in Consul, sealed with the state key secret', (name) => {
    const svc = merged(name);
    const env = svc.environment as Record<string, string>;
    expect(env.LUCID_STATE).toBe('consul');
    expect(env.CONSUL_HTTP_ADDR).toBe('consul:8500');
    expect(env.LUCID_STATE_ENCRYPTION_KEY).toBe('/run/secrets/state_key');
    expect(svc.secrets).toEqual(['state_key']);
    expect(compose.secrets.state_key?.file).toBe('./state.key');
    expect(Object.keys(svc.depends_on as Obj)).toContain('consul');
    for (const key of Object.keys(env))
      expect(known.has(key), `${name} sets ${key}, which serve does not read`).toBe(true);
  });

  it.each(replicas)('%s publishes its events to the compose rabbitmq', (name) => {
    const url = String((merged(name).environment as Obj).LUCID_EVENTS_AMQP);
    expect(url).toMatch(/^amqp:\/\/lucid:[^@]+@rabbitmq:5672\/lucid$/);
    expect(base.services.rabbitmq).toBeDefined();
  });

  it.each(replicas)('%s drains within its stop grace period', (name) => {
    const svc = merged(name);
    const drain = Number((svc.environment as Obj).LUCID_DRAIN_SECONDS);
    expect(drain).toBeGreaterThan(0);
    expect(seconds(svc.stop_grace_period)).toBeGreaterThan(drain);
  });

  it('publishes each replica on its own host ports', () => {
    const ports = replicas.flatMap((n) =>
      (merged(n).ports as string[]).map((p) => p.split(':')[0]),
    );
    expect(new Set(ports).size).toBe(ports.length);
  });
});
