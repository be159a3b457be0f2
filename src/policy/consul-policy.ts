// The authorization policy kept in a Consul KV key (with the Consul source): watched with a
// blocking query; a bad or missing value keeps the last good policy and says why.
import { isDeepStrictEqual } from 'node:util';
import type { ConsulClient } from '../sources/consul/client.js';
import { BlockingWatch, TokenBucket } from '../sources/consul/watch.js';
import type { Logger } from '../telemetry/logger.js';
import type { PolicyProvider } from './policy-file.js';
import { parsePolicyText, type Policy } from './schema.js';

export class ConsulPolicy implements PolicyProvider {
  private policy: Policy | undefined;
  private error: Error | undefined;
  private readonly listeners = new Set<(p: Policy) => void>();
  private readonly watch: BlockingWatch<{ Value?: string | null } | undefined>;
  private firstAnswer: (() => void) | undefined;

  constructor(
    client: ConsulClient,
    private readonly key: string,
    private readonly log: Logger,
    opts: { waitMs?: number } = {},
  ) {
    this.watch = new BlockingWatch({
      name: `kv/${key}`,
      fetch: (q) => client.kvGet(key, q),
      waitMs: opts.waitMs ?? 60_000,
      sharedLimiter: new TokenBucket(10, 10),
      backoffMinMs: 250,
      backoffMaxMs: 10_000,
      onData: (body) => this.apply(body?.Value ?? undefined),
      onError: (err, failures, retryInMs) => {
        this.fail(new Error(`consul kv ${key}: ${err.message}`));
        if (failures === 1)
          this.log.warn(
            { key, error: err.message, retryInMs },
            'policy key unreadable; keeping the last good policy',
          );
      },
    });
  }

  /** Starts watching; resolves after the first answer (or failure) from Consul. */
  start(): Promise<void> {
    const answered = new Promise<void>((resolve) => (this.firstAnswer = resolve));
    this.watch.start();
    return answered;
  }

  async stop(): Promise<void> {
    await this.watch.stop();
  }

  current(): Policy | undefined {
    return this.policy;
  }

  lastError(): Error | undefined {
    return this.error;
  }

  onChange(listener: (policy: Policy) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private apply(text: string | undefined): void {
    if (text === undefined) {
      this.fail(new Error(`consul kv ${this.key}: no such key`));
      this.log.warn({ key: this.key }, 'policy key missing; keeping the last good policy');
      return;
    }
    let policy: Policy;
    try {
      policy = parsePolicyText(text, `consul kv ${this.key}`);
    } catch (err) {
      this.fail(err as Error);
      this.log.warn(
        { key: this.key, error: (err as Error).message },
        'policy rejected; keeping the last good policy',
      );
      return;
    }
    this.error = undefined;
    this.firstAnswer?.();
    if (this.policy && isDeepStrictEqual(this.policy, policy)) return;
    this.policy = policy;
    this.log.info({ key: this.key }, 'policy loaded');
    for (const listener of this.listeners) listener(policy);
  }

  private fail(err: Error): void {
    this.error = err;
    this.firstAnswer?.();
  }
}
