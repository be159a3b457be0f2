// What the control plane's DNS server answers (docs/dns.md), from the mesh model: pure, no
// I/O. For callers outside the mesh (jobs, legacy hosts) that cannot use a sidecar.
//   <service>.<suffix>              A / AAAA: its healthy instances in this datacenter
//   _<service>._tcp.<suffix>        SRV: one per healthy instance, its port, target below
//   <instance-id>.instance.<suffix> A / AAAA: that instance
//   <service>.<dc>.<suffix>         A / AAAA: its healthy instances in datacenter <dc>
//   _<service>._tcp.<dc>.<suffix>   SRV: the same, as SRV (an unknown <dc>: NXDOMAIN)
// A meshed instance is answered with its sidecar (same address; SRV gives the sidecar port),
// so the caller must speak the mesh's mTLS to it: that is where the mesh's policy holds.
import { isIP } from 'node:net';
import type { Answer, Question, SrvAnswer, StringAnswer } from 'dns-packet';
import type { Mesh, MeshInstance, MeshService } from '../mesh/types.js';

/** DNS response codes (RFC 1035 4.1.1). */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };

export interface DnsAnswer {
  readonly rcode: number;
  /** Authoritative for the mesh domain; not for names outside it (REFUSED). */
  readonly authoritative: boolean;
  readonly answers: Answer[];
  /** The SOA of the mesh domain for negative answers (NXDOMAIN, no data). */
  readonly authorities: Answer[];
  /** Addresses of SRV targets. */
  readonly additionals: Answer[];
}

export interface AnswerSettings {
  /** TTL of every record, and of negative answers (the SOA minimum). */
  readonly ttlSeconds: number;
}

const refused: DnsAnswer = {
  rcode: RCODE.REFUSED,
  authoritative: false,
  answers: [],
  authorities: [],
  additionals: [],
};

/** Passing and warning instances take traffic (as in EDS); critical ones are not answered. */
const healthy = (i: MeshInstance): boolean => i.health !== 'critical';

/** Answers one question against `mesh` (undefined: no catalog yet → SERVFAIL). */
export function answerQuestion(
  mesh: Mesh | undefined,
  question: Question,
  settings: AnswerSettings,
): DnsAnswer {
  if (question.class !== 'IN' && question.class !== 'ANY') return refused;
  const name = question.name.toLowerCase().replace(/\.$/, '');
  const suffix = (mesh?.settings.domainSuffix ?? '').toLowerCase();
  if (!mesh) {
    return {
      rcode: RCODE.SERVFAIL,
      authoritative: false,
      answers: [],
      authorities: [],
      additionals: [],
    };
  }
  if (name !== suffix && !name.endsWith(`.${suffix}`)) return refused;
  const soa = soaRecord(suffix, settings.ttlSeconds);
  const negative = (rcode: number): DnsAnswer => ({
    rcode,
    authoritative: true,
    answers: [],
    authorities: [soa],
    additionals: [],
  });
  const relative = name === suffix ? '' : name.slice(0, -(suffix.length + 1));
  const found = lookup(mesh, relative);
  if (!found) return name === suffix ? apex(question, soa) : negative(RCODE.NXDOMAIN);
  const ttl = settings.ttlSeconds;
  // dns-packet reads QTYPE 255 as "ANY", which its types leave out.
  const qtype: string = question.type;
  const answers: Answer[] = [];
  const additionals: Answer[] = [];
  if (found.kind === 'srv') {
    if (qtype === 'SRV' || qtype === 'ANY') {
      for (const instance of found.instances) {
        const target = `${instance.id}.instance.${suffix}`;
        answers.push(srvRecord(question.name, ttl, instance, target));
        const address = addressRecord(target, ttl, instance.address);
        if (address) additionals.push(address);
      }
    }
  } else {
    if (qtype === 'A' || qtype === 'AAAA' || qtype === 'ANY') {
      const seen = new Set<string>();
      for (const instance of found.instances) {
        if (seen.has(instance.address)) continue;
        seen.add(instance.address);
        const record = addressRecord(question.name, ttl, instance.address);
        if (record && (qtype === 'ANY' || record.type === qtype)) answers.push(record);
      }
    }
  }
  // The name exists: no records of the type asked is "no data" (NOERROR, SOA), not NXDOMAIN.
  if (answers.length === 0) return negative(RCODE.NOERROR);
  return { rcode: RCODE.NOERROR, authoritative: true, answers, authorities: [], additionals };
}

type Found =
  | { kind: 'address'; instances: readonly MeshInstance[] }
  | { kind: 'srv'; instances: readonly MeshInstance[] };

const serviceIndexes = new WeakMap<Mesh, Map<string, MeshService>>();
const instanceIndexes = new WeakMap<Mesh, Map<string, MeshInstance>>();

function serviceByName(mesh: Mesh, name: string): MeshService | undefined {
  let index = serviceIndexes.get(mesh);
  if (!index) {
    index = new Map(mesh.services.map((s) => [s.name.toLowerCase(), s]));
    serviceIndexes.set(mesh, index);
  }
  return index.get(name);
}

function instanceById(mesh: Mesh, id: string): MeshInstance | undefined {
  let index = instanceIndexes.get(mesh);
  if (!index) {
    index = new Map();
    for (const s of mesh.services) {
      for (const i of s.instances) {
        // Instance ids are unique in the catalog, but not case-insensitively: the first wins.
        if (!index.has(i.id.toLowerCase())) index.set(i.id.toLowerCase(), i);
      }
    }
    instanceIndexes.set(mesh, index);
  }
  return index.get(id);
}

const datacenterIndexes = new WeakMap<Mesh, Map<string, string>>();

/**
 * The datacenter a DNS label names (lowercased label → its name as the mesh spells it), or
 * undefined. Known: this one, serve --datacenters, and every one an instance or gateway is in.
 */
function datacenterByLabel(mesh: Mesh, label: string): string | undefined {
  let index = datacenterIndexes.get(mesh);
  if (!index) {
    const names = [
      mesh.settings.datacenter,
      ...mesh.settings.datacenters,
      ...mesh.gateways.map((g) => g.datacenter),
      ...mesh.services.flatMap((s) => s.instances.map((i) => i.locality.datacenter)),
    ];
    index = new Map();
    for (const name of names)
      if (!index.has(name.toLowerCase())) index.set(name.toLowerCase(), name);
    datacenterIndexes.set(mesh, index);
  }
  return index.get(label);
}

/**
 * The service's instances a caller is given: healthy ones of datacenter `dc` (this one unless
 * the name says another). The caller's own datacenter is unknown, so other datacenters are
 * answered with their instances' addresses, never a mesh gateway's.
 */
function answerable(
  mesh: Mesh,
  service: MeshService,
  dc = mesh.settings.datacenter,
): readonly MeshInstance[] {
  return service.instances.filter((i) => healthy(i) && i.locality.datacenter === dc);
}

/** `relative`: the name without the mesh suffix. */
function lookup(mesh: Mesh, relative: string): Found | undefined {
  const labels = relative.split('.');
  // `instance` is the instance-name label before it is a datacenter's name.
  if (labels.length >= 2 && labels[labels.length - 1] === 'instance') {
    const instance = instanceById(mesh, labels.slice(0, -1).join('.'));
    return instance ? { kind: 'address', instances: [instance] } : undefined;
  }
  // A last label naming a datacenter asks there; a service named like one keeps its name.
  const last = labels[labels.length - 1]!;
  const dc = datacenterByLabel(mesh, last);
  if (dc !== undefined && !(labels.length === 1 && serviceByName(mesh, last))) {
    return lookupIn(mesh, labels.slice(0, -1), dc);
  }
  return lookupIn(mesh, labels, mesh.settings.datacenter);
}

/** Labels with names below them and no records of their own (a service named so wins). */
const EMPTY_NODES = new Set(['_tcp', 'instance']);

/** `labels`: the name without the datacenter label (if any) and the mesh suffix. */
function lookupIn(mesh: Mesh, labels: readonly string[], dc: string): Found | undefined {
  if (labels.length === 2 && labels[0]!.startsWith('_') && labels[1] === '_tcp') {
    const service = serviceByName(mesh, labels[0]!.slice(1));
    return service ? { kind: 'srv', instances: answerable(mesh, service, dc) } : undefined;
  }
  if (labels.length === 1 && labels[0] !== '') {
    const service = serviceByName(mesh, labels[0]!);
    if (service) return { kind: 'address', instances: answerable(mesh, service, dc) };
  }
  // A bare `<dc>.<suffix>`, `_tcp.<suffix>` or `instance.<suffix>` has names under it: "no
  // data", not NXDOMAIN, which would tell resolvers that minimise their queries (RFC 8020)
  // that nothing below exists, so `_world._tcp` or `world-1.instance` would never be asked.
  if (labels.length === 0 || (labels.length === 1 && EMPTY_NODES.has(labels[0]!))) {
    return { kind: 'address', instances: [] };
  }
  return undefined;
}

function apex(question: Question, soa: Answer): DnsAnswer {
  const qtype: string = question.type;
  const answers = qtype === 'SOA' || qtype === 'ANY' ? [soa] : [];
  return {
    rcode: RCODE.NOERROR,
    authoritative: true,
    answers,
    authorities: answers.length > 0 ? [] : [soa],
    additionals: [],
  };
}

function addressRecord(name: string, ttl: number, address: string): StringAnswer | undefined {
  const family = isIP(address);
  if (family === 0) return undefined;
  return { type: family === 4 ? 'A' : 'AAAA', name, ttl, class: 'IN', data: address };
}

function srvRecord(name: string, ttl: number, instance: MeshInstance, target: string): SrvAnswer {
  return {
    type: 'SRV',
    name,
    ttl,
    class: 'IN',
    data: { priority: 1, weight: 1, port: instance.sidecarPort ?? instance.port, target },
  };
}

function soaRecord(suffix: string, ttl: number): Answer {
  return {
    type: 'SOA',
    name: suffix,
    ttl,
    class: 'IN',
    data: {
      mname: `ns.${suffix}`,
      rname: `hostmaster.${suffix}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      // Negative answers are cached this long (RFC 2308): as long as positive ones.
      minimum: ttl,
    },
  };
}
