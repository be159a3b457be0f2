// A discovery source turns some backend (a file, Consul, etcd) into catalog snapshots.
import type { Catalog } from '../catalog/model.js';
import type { ConfigProblem } from '../traffic/provider.js';

export interface CatalogSink {
  /** A complete, valid catalog. Called after the first full load and after every change. */
  update(catalog: Catalog): void;
  /**
   * The backend failed or sent something invalid. The last good catalog stays in force;
   * the sink only reports it (logs, metrics, readiness detail).
   */
  error(err: Error): void;
  /**
   * The backend answers again after errors, and nothing in it changed meanwhile (so no
   * update follows): what the errors said no longer holds.
   */
  recovered?(): void;
}

export interface DiscoverySource {
  /** Short name for logs and metrics, e.g. "file", "consul". */
  readonly name: string;
  /** Starts watching. Resolves once watching is set up (the first load may still fail). */
  start(sink: CatalogSink): Promise<void>;
  /** Stops watching and releases resources; no sink calls happen afterwards. */
  stop(): Promise<void>;
  /**
   * The datacenter the backend itself is in, once known (Consul: the agent's). The control
   * plane takes it as its own unless `serve --datacenter` says otherwise.
   */
  localDatacenter?(): string | undefined;
  /**
   * Entries of the backend left out of the catalog while the rest is served (etcd: a key
   * with a bad value), listed by status and /v1/config/errors until they are fixed.
   */
  problems?(): readonly ConfigProblem[];
}
