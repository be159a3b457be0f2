// Replicas sharing a state store must serve the same mesh settings (the serve flags that change
// what a sidecar receives, docs/ha.md): a sidecar that moves between two replicas (stream
// age-out, failover) otherwise flips between two configurations. Each replica publishes its
// settings under <prefix>replicas/<replica>, on its liveness (gone when the replica is). A
// starting replica compares with the live ones and refuses to start on a difference unless the
// operator declares a change (--allow-settings-change); a running one keeps comparing and
// reports what differs (log, gauge), as a mismatch can still arise (two replicas starting at
// once, a replica started with the override, an old replica restarted with it).
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../../telemetry/logger.js';
import { compareStrings } from '../../text-order.js';
import { parseStored } from '../stored-records.js';
import type { KvCaStore } from './kv-store.js';

/** Setting (its flag, e.g. "--scope") → its value as the operator would write it. */
export type ReplicaSettings = Readonly<Record<string, string>>;

const recordValue = z.object({
  version: z.literal(1),
  replica: z.string().min(1),
  /** sha256 of the settings: the same on every replica that serves the same config. */
  digest: z.string(),
  /**
   * The settings the mesh is moving to carry the highest generation among the live replicas:
   * a replica started with --allow-settings-change whose settings differed takes the next one;
   * a replica that matches it joins it. So after the first replica of a rolling change, the
   * others with the new settings start without the override, and an old one started again is
   * refused (it would roll the change back).
   */
  generation: z.number().int().min(1),
  settings: z.record(z.string(), z.string()),
});
type ReplicaRecord = z.infer<typeof recordValue>;

/** The replica's settings differ from the running replicas'; the message says how (exit 2). */
export class ReplicaSettingsError extends Error {
  override readonly name: string = 'ReplicaSettingsError';
}

/** Order-independent digest of the settings (hex). */
export function settingsDigest(settings: ReplicaSettings): string {
  const sorted = Object.entries(settings).sort(([a], [b]) => compareStrings(a, b));
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}

export interface SettingDifference {
  readonly setting: string;
  readonly mine: string;
  /** The other values seen, distinct, sorted. */
  readonly theirs: readonly string[];
}

/**
 * The settings whose value differs between `mine` and any of `others`. A setting only one side
 * records is not compared: another lucid-mesh version may know settings this one does not, and
 * upgrading lucid-mesh itself must not count as a change of settings.
 */
export function settingDifferences(
  mine: ReplicaSettings,
  others: readonly ReplicaSettings[],
): SettingDifference[] {
  const out: SettingDifference[] = [];
  for (const setting of Object.keys(mine).sort(compareStrings)) {
    const value = mine[setting]!;
    const theirs = new Set<string>();
    for (const other of others) {
      const v = other[setting];
      if (v !== undefined && v !== value) theirs.add(v);
    }
    if (theirs.size > 0)
      out.push({ setting, mine: value, theirs: [...theirs].sort(compareStrings) });
  }
  return out;
}

/** `--scope: this replica declared, the running replicas policy; ...` */
export function describeDifferences(
  diffs: readonly SettingDifference[],
  others = 'the running replicas',
): string {
  return diffs
    .map((d) => `${d.setting}: this replica ${d.mine}, ${others} ${d.theirs.join(' or ')}`)
    .join('; ');
}

export interface ReplicaSettingsOptions {
  /** --allow-settings-change: start even though the settings differ (a deliberate change). */
  readonly allowChange: boolean;
  readonly logger?: Logger;
  /** How often a running replica compares with the others, ms. Default 5 s. */
  readonly intervalMs?: number;
}

/** Another live replica serving other settings than this one, and which. */
export interface ReplicaMismatch {
  readonly replica: string;
  /** The settings (flags) that differ, sorted. */
  readonly settings: readonly string[];
}

/** This replica's published settings and its running comparison with the other replicas'. */
export class ReplicaSettingsMonitor {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private differing: readonly ReplicaMismatch[] = [];
  /** What the last check found different ('' nothing): logged once per change. */
  private reported = '';
  /** Records that did not parse, warned about once each. */
  private readonly unreadable = new Set<string>();

  private constructor(
    private readonly store: KvCaStore,
    private readonly settings: ReplicaSettings,
    private readonly log: Logger | undefined,
  ) {}

  /**
   * Compares `settings` with the live replicas' (the newest generation's), publishes them, and
   * keeps comparing every `intervalMs`.
   * @throws ReplicaSettingsError when they differ and `allowChange` is off (nothing written)
   */
  static async join(
    store: KvCaStore,
    settings: ReplicaSettings,
    opts: ReplicaSettingsOptions,
  ): Promise<ReplicaSettingsMonitor> {
    const log = opts.logger?.child({ component: 'replica-settings' });
    const monitor = new ReplicaSettingsMonitor(store, settings, log);
    const others = await monitor.others();
    const newest = Math.max(0, ...others.map((r) => r.generation));
    const target = others.filter((r) => r.generation === newest);
    const diffs = settingDifferences(
      settings,
      target.map((r) => r.settings),
    );
    let generation = Math.max(1, newest);
    if (diffs.length > 0) {
      const where = `${store.location}, key ${store.layout.replicasDir}`;
      if (!opts.allowChange) {
        throw new ReplicaSettingsError(
          `${describeDifferences(diffs)} (${where}): a sidecar moving between replicas would ` +
            'flip between their configurations; give every replica the same settings, or start ' +
            'the replicas of a deliberate change with --allow-settings-change (docs/ha.md); ' +
            'refusing to start',
        );
      }
      generation = newest + 1;
      log?.warn(
        { differences: describeDifferences(diffs), generation, store: where },
        'starting with other mesh settings than the running replicas (--allow-settings-change): a rolling change',
      );
    }
    const record: ReplicaRecord = {
      version: 1,
      replica: store.replicaId,
      digest: settingsDigest(settings),
      generation,
      settings: { ...settings },
    };
    await store.publishReplicaSettings(JSON.stringify(record));
    await monitor.check();
    monitor.timer = setInterval(() => void monitor.check(), opts.intervalMs ?? 5_000);
    monitor.timer.unref();
    return monitor;
  }

  /** How many other live replicas serve other settings (0: all agree), at the last check. */
  mismatched(): number {
    return this.differing.length;
  }

  /** Which replicas serve other settings and which settings, at the last check (by replica). */
  mismatches(): readonly ReplicaMismatch[] {
    return this.differing;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One comparison at a time; a store out of reach leaves the last result (its health says so). */
  private check(): Promise<void> {
    this.checking ??= this.compare()
      .catch(() => undefined)
      .finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async compare(): Promise<void> {
    const others = await this.others();
    const differing = others.filter(
      (r) => settingDifferences(this.settings, [r.settings]).length > 0,
    );
    this.differing = differing
      .map((r) => ({
        replica: r.replica,
        settings: settingDifferences(this.settings, [r.settings]).map((d) => d.setting),
      }))
      .sort((a, b) => compareStrings(a.replica, b.replica));
    const text = describeDifferences(
      settingDifferences(
        this.settings,
        differing.map((r) => r.settings),
      ),
      'other replicas',
    );
    if (text === this.reported) return;
    if (text !== '') {
      this.log?.error(
        { differences: text, replicas: differing.map((r) => r.replica).sort(compareStrings) },
        `mesh settings differ between replicas: ${text}; sidecars moving between them flip between their configurations`,
      );
    } else {
      this.log?.info('mesh settings agree with every other replica again');
    }
    this.reported = text;
  }

  /** The other live replicas' records; one that does not parse is left out, with a warning. */
  private async others(): Promise<ReplicaRecord[]> {
    const where = (key: string) => `${this.store.location}: key ${key}`;
    const out: ReplicaRecord[] = [];
    for (const { key, value } of await this.store.readReplicaSettings()) {
      try {
        const record = parseStored(where(key), value, recordValue);
        if (record.replica !== this.store.replicaId) out.push(record);
      } catch (err) {
        if (this.unreadable.has(value)) continue;
        this.unreadable.add(value);
        this.log?.warn({ error: (err as Error).message }, 'replica settings record ignored');
      }
    }
    return out;
  }
}
