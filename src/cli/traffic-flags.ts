// `lucid-mesh serve` traffic flags: where the config entries come from, and the mesh-wide
// settings that go with them (intentions default, connect timeout, datacenters, failover). --traffic FILE wins; otherwise the discovery source's own store
// holds them (Consul: /v1/config/<kind>; etcd: <prefix>config/<kind>/<name>); a catalog file
// without --traffic means no traffic configuration.
import { existsSync } from 'node:fs';
import { InvalidArgumentError, Option } from 'commander';
import type { ControlPlaneOptions } from '../app.js';
import { consulSourcesFromFlags } from '../sources/consul/config-entries.js';
import { etcdTrafficSourceFromFlags } from '../sources/etcd/config-entries.js';
import {
  SourceFlagError,
  directoryProblem,
  sourceFromFlags,
  type SourceKind,
} from '../sources/from-flags.js';
import type { DiscoverySource } from '../sources/source.js';
import type { Logger } from '../telemetry/logger.js';
import type { TrafficProvider } from '../traffic/provider.js';
import { TrafficFile } from '../traffic/traffic-file.js';
import { SCOPE_MODES, type ScopeMode } from '../mesh/types.js';
import { choiceOption, durationMsOption } from './options.js';

export const INTENTION_DEFAULTS = ['allow', 'deny'] as const;

export interface TrafficFlags {
  traffic?: string;
  intentionsDefault: (typeof INTENTION_DEFAULTS)[number];
  connectTimeoutMs: number;
  datacenter: string;
  datacenters: readonly string[];
  failoverThreshold?: number;
  /** serve --scope (absent: policy when --policy is given, else all). */
  scope?: ScopeMode;
  /** The security flags --policy / --policy-consul-key: only whether one is given matters. */
  policy?: string;
  policyConsulKey?: string;
}

const DATACENTER = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})?$/;

function datacenterOption(flag: string) {
  return (value: string): string => {
    if (!DATACENTER.test(value)) {
      throw new InvalidArgumentError(
        `${flag}: expected a datacenter name (letters, digits, . _ -), got ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
}

function datacenterListOption(flag: string) {
  const one = datacenterOption(flag);
  return (value: string): string[] => {
    const names = value
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== '');
    return [...new Set(names.map(one))];
  };
}

function percentOption(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value.trim()) || n <= 0 || n > 100) {
      throw new InvalidArgumentError(
        `${flag}: expected a percentage above 0, at most 100, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

export function trafficCliOptions(): Option[] {
  return [
    new Option(
      '--traffic <file>',
      "traffic configuration: Consul config entries (YAML/JSON list), watched; default: the source's own (Consul config entries, etcd <prefix>config/)",
    ).env('LUCID_TRAFFIC'),
    new Option(
      '--intentions-default <action>',
      'what a service does with callers no intention names, also a service without service-intentions (Consul: the ACL default policy; deny: a service no intention allows takes no mesh callers)',
    )
      .env('LUCID_INTENTIONS_DEFAULT')
      .default('allow')
      .argParser(choiceOption('--intentions-default', INTENTION_DEFAULTS)),
    new Option(
      '--connect-timeout-ms <ms>',
      'upstream connect timeout when no entry sets one (proxy-defaults connect_timeout_ms, resolver ConnectTimeout)',
    )
      .env('LUCID_CONNECT_TIMEOUT_MS')
      .default(5000)
      .argParser(durationMsOption('--connect-timeout-ms', 600_000)),
    new Option(
      '--datacenter <name>',
      "this control plane's datacenter: catalog instances and sidecars that name none are in it",
    )
      .env('LUCID_DATACENTER')
      .default('dc1')
      .argParser(datacenterOption('--datacenter')),
    new Option(
      '--datacenters <list>',
      'failover order of the other datacenters, comma-separated (others follow by name)',
    )
      .env('LUCID_DATACENTERS')
      .default([])
      .argParser(datacenterListOption('--datacenters')),
    new Option(
      '--failover-threshold <percent>',
      "share of healthy endpoints in a locality below which the next one takes load (default: Envoy's, about 71)",
    )
      .env('LUCID_FAILOVER_THRESHOLD')
      .argParser(percentOption('--failover-threshold')),
    new Option(
      '--scope <mode>',
      "which services each sidecar receives (docs/scoping.md): all; declared (its service's declared upstreams, else all); policy (declared upstreams, else what the policy and intentions let it call, else all). Default: policy when --policy or --policy-consul-key is given, else all",
    )
      .env('LUCID_SCOPE')
      .argParser(choiceOption('--scope', SCOPE_MODES)),
  ];
}

/**
 * The Consul datacenters to watch default to the failover order (--datacenters): a
 * datacenter one fails over to must be read. --consul-datacenters can still say otherwise.
 */
function withConsulDatacenters<F extends Record<string, unknown> & TrafficFlags>(flags: F): F {
  if (flags.consulDatacenters !== undefined || (flags.datacenters ?? []).length === 0) return flags;
  return { ...flags, consulDatacenters: flags.datacenters.join(',') };
}

/** The discovery source and, when there is one, the traffic provider. */
export function sourcesFromFlags(
  kind: SourceKind,
  flags: Record<string, unknown> & TrafficFlags,
  logger: Logger,
): { source: DiscoverySource; traffic?: TrafficProvider } {
  if (flags.traffic !== undefined) {
    if (!existsSync(flags.traffic)) {
      throw new SourceFlagError(`--traffic: no such file ${JSON.stringify(flags.traffic)}`);
    }
    const folder = directoryProblem('--traffic', flags.traffic);
    if (folder) throw new SourceFlagError(folder);
    return {
      source: sourceFromFlags(
        kind,
        kind === 'consul' ? withConsulDatacenters(flags) : flags,
        logger,
      ),
      traffic: new TrafficFile(flags.traffic, logger),
    };
  }
  if (kind === 'consul') flags = withConsulDatacenters(flags);
  if (kind === 'consul') {
    const { catalog, traffic } = consulSourcesFromFlags(flags, logger);
    return { source: catalog, traffic };
  }
  const source = sourceFromFlags(kind, flags, logger);
  if (kind === 'etcd') return { source, traffic: etcdTrafficSourceFromFlags(flags, logger) };
  return { source };
}

/**
 * `datacenterGiven`: --datacenter (or its env) was set; otherwise the control plane takes the
 * source's own datacenter when it has one (Consul's agent's), else the default.
 */
export function meshSettingsFromFlags(
  flags: TrafficFlags,
  datacenterGiven = true,
): ControlPlaneOptions['mesh'] {
  return {
    intentionsDefault: flags.intentionsDefault,
    connectTimeoutMs: flags.connectTimeoutMs,
    ...(datacenterGiven ? { datacenter: flags.datacenter } : {}),
    // Without --datacenter the control plane's own is only known later (the source's): the
    // app drops it from the order then; filtering against the default here would lose one.
    datacenters: datacenterGiven
      ? flags.datacenters.filter((d) => d !== flags.datacenter)
      : [...flags.datacenters],
    ...(flags.failoverThreshold !== undefined
      ? { failoverThresholdPercent: flags.failoverThreshold }
      : {}),
    scope: scopeMode(
      flags.scope,
      flags.policy !== undefined || flags.policyConsulKey !== undefined,
    ),
  };
}

/** --scope as given, else serve's default: policy when a policy is given, else all. */
export function scopeMode(given: ScopeMode | undefined, policyGiven: boolean): ScopeMode {
  return given ?? (policyGiven ? 'policy' : 'all');
}
