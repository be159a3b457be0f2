// A catalog that changes one service at a time, for property tests that compare an
// incremental build (patched) with a full one over any sequence of catalog edits.
import fc from 'fast-check';
import type { Catalog } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';

export interface WalkService {
  present: boolean;
  protocol: 'http' | 'tcp';
  health: Array<'passing' | 'critical'>;
  /** The first instance's tag (the others carry v2); only with `tags`. */
  tag: 'v1' | 'v2';
}

export type WalkState = Map<string, WalkService>;

export interface CatalogWalkOptions {
  /** The service names, in catalog order; the first calls the sixth at a local bind port. */
  names: readonly string[];
  /** The first two octets of instance addresses, e.g. '10.1'. */
  addressPrefix: string;
  /** Instances carry tags and a step may flip the first one's (for resolver subsets). */
  tags?: boolean;
}

export interface WalkStep {
  at: number;
  kind: 'health' | 'tag' | 'protocol' | 'instances' | 'presence';
  n: number;
}

export interface CatalogWalk {
  names: readonly string[];
  /** Every service present, http, two passing instances tagged v1. */
  initial(): WalkState;
  /** One step changes one service: an instance's health (the common case), its tag (with
   * `tags`), its protocol, its instance count, or whether it exists at all. */
  step: fc.Arbitrary<WalkStep>;
  /** The state after the step (the changed service is a new object, the others are kept). */
  apply(state: WalkState, step: WalkStep): void;
  catalogOf(state: WalkState): Catalog;
}

export function catalogWalk(options: CatalogWalkOptions): CatalogWalk {
  const { names, addressPrefix, tags = false } = options;
  const [caller, callee] = [names[0]!, names[5]!];
  const kinds: Array<WalkStep['kind']> = tags
    ? ['health', 'health', 'health', 'tag', 'protocol', 'instances', 'presence']
    : ['health', 'health', 'health', 'health', 'protocol', 'instances', 'presence'];
  return {
    names,
    initial: () =>
      new Map(
        names.map((n) => [
          n,
          { present: true, protocol: 'http', health: ['passing', 'passing'], tag: 'v1' },
        ]),
      ),
    step: fc.record({
      at: fc.nat({ max: names.length - 1 }),
      kind: fc.constantFrom(...kinds),
      n: fc.nat(),
    }),
    apply(state, s) {
      const name = names[s.at]!;
      const st = { ...state.get(name)! };
      st.health = [...st.health];
      if (s.kind === 'health' && st.health.length > 0) {
        const i = s.n % st.health.length;
        st.health[i] = st.health[i] === 'passing' ? 'critical' : 'passing';
      }
      if (s.kind === 'tag') st.tag = st.tag === 'v1' ? 'v2' : 'v1';
      if (s.kind === 'protocol') st.protocol = st.protocol === 'http' ? 'tcp' : 'http';
      if (s.kind === 'instances') st.health = Array.from({ length: s.n % 4 }, () => 'passing');
      if (s.kind === 'presence') st.present = !st.present;
      state.set(name, st);
    },
    catalogOf: (state) =>
      parseCatalog({
        services: names
          .filter((n) => state.get(n)!.present)
          .map((name, s) => {
            const st = state.get(name)!;
            return {
              name,
              protocol: st.protocol,
              ...(st.protocol === 'tcp' ? { outboundPort: 9000 + s } : {}),
              // The caller's sidecars reach the callee at a local bind port (a bind route while
              // it is http).
              ...(name === caller ? { upstreams: [{ name: callee, localBindPort: 7005 }] } : {}),
              instances: st.health.map((health, i) => ({
                id: `${name}-${i}`,
                address: `${addressPrefix}.${s}.${i + 1}`,
                port: 80,
                sidecarPort: 15006,
                health,
                ...(tags ? { tags: [i === 0 ? st.tag : 'v2'] } : {}),
              })),
            };
          }),
      }),
  };
}
