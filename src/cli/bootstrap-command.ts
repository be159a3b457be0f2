// `lucid-mesh bootstrap`: prints (or atomically writes) the minimal Envoy bootstrap for a
// sidecar. Usage errors: one line `lucid-mesh bootstrap: <problem>` on stderr, exit code 2.
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { withUsageErrors } from './usage.js';
import {
  BootstrapOptionError,
  DEFAULT_ADMIN_PORT,
  DEFAULT_MODE,
  DEFAULT_DNS_PORT,
  DEFAULT_OUTBOUND_PORT,
  renderResolvedBootstrap,
  resolveBootstrapOptions,
} from '../bootstrap/render.js';
import {
  ConsulClient,
  ConsulRequestError,
  type ConsulAgentService,
} from '../sources/consul/client.js';
import {
  ConsulFlagError,
  consulConnectionCliOptions,
  consulConnectionFromFlags,
} from '../sources/consul/options.js';
import { MESH_GATEWAY_SERVICE } from '../mesh/index.js';
import { hostPortClashes, lookupConsulProxy } from '../sources/consul/proxy-registration.js';

const PREFIX = 'lucid-mesh bootstrap';
export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

/** Where the command writes and how it exits; tests replace these to run it in-process. */
export interface BootstrapCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Must not return (default process.exit). Called with 0 after --help. */
  exit?: (code: number) => never;
}

interface RawFlags {
  nodeId?: string;
  service?: string;
  gateway?: string;
  xds?: string[];
  mode?: string;
  adminPort?: string | number;
  outboundPort?: string | number;
  dnsPort?: string | number;
  dnsForward?: string;
  output?: string;
  token?: string;
  tokenFile?: string;
  xdsCa?: string;
  consulServiceId?: string;
  datacenter?: string;
  region?: string;
  zone?: string;
  prometheusBind?: string;
  [consulFlag: string]: unknown;
}

/** Writes `content` to `file` via a temp file in the same directory + rename. */
export function writeFileAtomic(file: string, content: string, mode = 0o644): void {
  const target = resolve(file);
  const tmp = join(
    dirname(target),
    `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', mode);
    writeSync(fd, content);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function bootstrapCommand(io: BootstrapCommandIo = {}): Command {
  const stdout = io.stdout ?? ((s: string) => void process.stdout.write(s));
  const stderr = io.stderr ?? ((s: string) => void process.stderr.write(s));
  const exit = io.exit ?? ((code: number): never => process.exit(code));
  const problem = (message: string, code: number): never => {
    stderr(`${PREFIX}: ${message}\n`);
    return exit(code);
  };

  const cmd = new Command('bootstrap')
    .description(
      'Print the minimal static Envoy bootstrap for a sidecar: node identity, a local admin ' +
        'endpoint and the ADS connection to the control plane. Listeners, routes and clusters ' +
        'then arrive over xDS. Check the result with `envoy --mode validate -c FILE`.',
    )
    .addOption(
      new Option(
        '--node-id <id>',
        'Envoy node id, unique per sidecar (required, unless --consul-service-id gives it)',
      ),
    )
    .addOption(
      new Option(
        '--service <name>',
        'service this sidecar belongs to, a DNS label; becomes node.cluster and ' +
          'node.metadata.service (required, unless --consul-service-id gives it)',
      ),
    )
    .addOption(
      new Option(
        '--gateway <kind>',
        'bootstrap a gateway instead of a sidecar: mesh (an Envoy at the edge of a datacenter ' +
          'forwarding mesh TLS by SNI; its --node-id must be a gateway of the catalog and its ' +
          'token issued for the service mesh-gateway)',
      ).choices(['mesh']),
    )
    .addOption(
      new Option(
        '--xds <host:port>',
        'control plane ADS address; repeat it once per replica (Envoy moves to another one ' +
          'when its stream breaks), or give one DNS name that resolves to every replica; IP ' +
          'literals only give a STATIC cluster, a hostname a STRICT_DNS one (IPv4 preferred); ' +
          'IPv6 literals as [addr]:port (required)',
      ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]),
    )
    .addOption(
      new Option(
        '--mode <mode>',
        'ADS flavour: sotw (state of the world, api_type GRPC) or delta (incremental, ' +
          'DELTA_GRPC; also node.metadata.vhds: outbound virtual hosts over VHDS, docs/vhds.md)',
      ).default(DEFAULT_MODE),
    )
    .addOption(
      new Option('--admin-port <port>', 'Envoy admin port, bound on 127.0.0.1')
        .env('ENVOY_ADMIN_PORT')
        .default(DEFAULT_ADMIN_PORT),
    )
    .addOption(
      new Option(
        '--outbound-port <port>',
        'port of the outbound listener the control plane will send (node.metadata.outbound_port)',
      ).default(DEFAULT_OUTBOUND_PORT),
    )
    .addOption(
      new Option(
        '--dns-port <port>',
        'UDP port on 127.0.0.1 of the DNS listener the control plane will send, answering ' +
          '<service>.lucid.internal (node.metadata.dns_port); 0: none. See docs/dns.md',
      )
        .env('LUCID_SIDECAR_DNS_PORT')
        .default(DEFAULT_DNS_PORT),
    )
    .addOption(
      new Option(
        '--dns-forward <on|off>',
        'on: names the DNS listener does not know go to the resolvers of its /etc/resolv.conf; ' +
          'off: it answers them NXDOMAIN itself (node.metadata.dns_forward), for a host ' +
          'resolver that sends only the mesh domain to the sidecar. See docs/dns.md',
      )
        .env('LUCID_SIDECAR_DNS_FORWARD')
        .default('on'),
    )
    .addOption(
      new Option(
        '-o, --output <file>',
        'write the bootstrap to FILE atomically (temp file + rename) instead of stdout',
      ),
    )
    .addOption(
      new Option(
        '--token <token>',
        'proxy token from `lucid-mesh token issue --service NAME`, sent as ADS metadata ' +
          '(needed unless the control plane runs with --auth none); the file is then written ' +
          "0600. An operator token, another service's or an expired one is refused (exit 2)",
      ).env('LUCID_TOKEN'),
    )
    .addOption(
      new Option('--token-file <file>', 'read the proxy token from FILE instead').env(
        'LUCID_TOKEN_FILE',
      ),
    )
    .addOption(
      new Option(
        '--xds-ca <file>',
        "PEM CA the control plane's TLS certificate chains to: ADS over TLS (serve --xds-tls-cert)",
      ),
    )
    .addOption(
      new Option(
        '--datacenter <name>',
        'datacenter this sidecar runs in (node.metadata.datacenter); with --consul-service-id ' +
          "default: the Consul agent's datacenter",
      ).env('LUCID_DATACENTER'),
    )
    .addOption(
      new Option(
        '--region <name>',
        'region this sidecar runs in (node.locality.region); with --consul-service-id default: ' +
          "the registration's Meta.region, else the Consul node's meta region",
      ).env('LUCID_REGION'),
    )
    .addOption(
      new Option(
        '--zone <name>',
        'zone this sidecar runs in (node.locality.zone); with --consul-service-id default: ' +
          "the registration's Meta.zone, else the Consul node's meta zone",
      ).env('LUCID_ZONE'),
    )
    .addOption(
      new Option(
        '--prometheus-bind <ip:port>',
        'also serve /stats/prometheus of the admin on IP:PORT (e.g. 0.0.0.0:20200) for ' +
          "Prometheus, as Consul's envoy_prometheus_bind_addr: a static listener forwarding " +
          'only that path to the admin (every other path 404); default: none',
      ).env('LUCID_PROMETHEUS_BIND'),
    )
    .addOption(
      new Option(
        '--consul-service-id <id>',
        'take node id, service, ports and locality from this Consul sidecar registration (Kind ' +
          'connect-proxy, e.g. web-1-sidecar-proxy; an app service id with a sidecar works too), ' +
          'read from the local Consul agent as `consul connect envoy` does; flags given ' +
          'explicitly win',
      ),
    );
  for (const option of consulConnectionCliOptions()) cmd.addOption(option);
  withUsageErrors(cmd, PREFIX, { stdout, stderr, exit })
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 2 invalid arguments, 1 the output file could not be written or the ' +
        'Consul lookup failed.\n' +
        '\nExamples:\n' +
        '  lucid-mesh bootstrap --node-id web-1 --service web --xds 127.0.0.1:18000\n' +
        '  lucid-mesh bootstrap --node-id web-1 --service web --xds control-plane:18000 \\\n' +
        '    --mode delta -o /etc/envoy/bootstrap.yaml\n' +
        '  lucid-mesh bootstrap --node-id web-1 --service web \\\n' +
        '    --xds cp-0.cp:18000 --xds cp-1.cp:18000 --xds cp-2.cp:18000   # three replicas\n' +
        '  lucid-mesh bootstrap --node-id web-1 --service web --xds 127.0.0.1:18000 \\\n' +
        '    --datacenter dc1 --region eu-west --zone eu-west-1a\n' +
        '  lucid-mesh bootstrap --node-id web-1 --service web --xds 127.0.0.1:18000 \\\n' +
        '    --prometheus-bind 0.0.0.0:20200   # Prometheus scrapes :20200/stats/prometheus\n' +
        '  lucid-mesh bootstrap --gateway mesh --node-id gw-dc2-1 --datacenter dc2 --xds 127.0.0.1:18000\n' +
        '  lucid-mesh bootstrap --consul-service-id web-1-sidecar-proxy --xds 127.0.0.1:18000 \\\n' +
        '    --consul 127.0.0.1:8500',
    )
    .action(async (flags: RawFlags, command: Command) => {
      // Set on the command line or by env, not a commander default.
      const explicit = (key: string): boolean =>
        flags[key] !== undefined && command.getOptionValueSource(key) !== 'default';
      let input: RawFlags & { token?: string; xdsCaPem?: string } = flags;
      let from: Partial<Record<string, string>> = {};
      let neighbours: { id: string; proxies: readonly ConsulAgentService[] } | undefined;
      if (flags.token !== undefined && flags.tokenFile !== undefined) {
        return problem('--token-file: give --token or --token-file, not both', EXIT_USAGE);
      }
      const readFlagFile = (flag: string, file: string): string | undefined => {
        try {
          return readFileSync(file, 'utf8');
        } catch (err) {
          problem(
            `${flag}: cannot read ${JSON.stringify(file)}: ${(err as Error).message}`,
            EXIT_USAGE,
          );
          return undefined;
        }
      };
      const token =
        flags.tokenFile !== undefined
          ? readFlagFile('--token-file', flags.tokenFile)?.trim()
          : flags.token;
      const xdsCaPem =
        flags.xdsCa !== undefined ? readFlagFile('--xds-ca', flags.xdsCa) : undefined;
      input = { ...flags, token, xdsCaPem };
      if (flags.gateway !== undefined) {
        // A gateway is a node of the service mesh-gateway (mesh/proxy.ts): that is what its
        // token must be issued for, and what tells the control plane it is one.
        if (flags.service !== undefined && flags.service !== MESH_GATEWAY_SERVICE) {
          return problem(
            `--service: a mesh gateway is always service ${MESH_GATEWAY_SERVICE}, got ${JSON.stringify(flags.service)}`,
            EXIT_USAGE,
          );
        }
        if (flags.consulServiceId !== undefined) {
          return problem(
            '--gateway: not with --consul-service-id (register the gateway in the catalog)',
            EXIT_USAGE,
          );
        }
        input = { ...input, service: MESH_GATEWAY_SERVICE };
      }
      if (flags.consulServiceId !== undefined) {
        const looked = await fromConsul(flags, explicit);
        if ('usage' in looked) return problem(looked.usage, EXIT_USAGE);
        if ('failure' in looked) return problem(looked.failure, EXIT_FAILURE);
        input = { ...looked.input, token, xdsCaPem };
        from = looked.from;
        neighbours = looked.neighbours;
      }
      let yaml: string;
      try {
        const resolved = resolveBootstrapOptions(input);
        yaml = renderResolvedBootstrap(resolved);
        // Not an error: the other sidecar may run with ports given by flags, which Consul does
        // not know.
        for (const clash of neighbours
          ? hostPortClashes(neighbours.id, resolved, neighbours.proxies, {
              adminPort: DEFAULT_ADMIN_PORT,
              outboundPort: DEFAULT_OUTBOUND_PORT,
              dnsPort: DEFAULT_DNS_PORT,
            })
          : []) {
          stderr(`${PREFIX}: warning: ${clash}\n`);
        }
      } catch (err) {
        if (err instanceof BootstrapOptionError) {
          const key = flagKey(err.flag);
          const source = flags[key] === undefined ? (from[key] ?? from['*']) : undefined;
          return problem(source ? `${err.message} (from ${source})` : err.message, EXIT_USAGE);
        }
        throw err;
      }
      if (flags.output === undefined) {
        stdout(yaml);
        return;
      }
      try {
        // A bootstrap with a token is a credential: readable by its owner only.
        writeFileAtomic(flags.output, yaml, token ? 0o600 : 0o644);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        // "ENOENT: no such file or directory, open '<temp>'" -> "no such file or directory (ENOENT)"
        const reason = e.code
          ? `${e.message.replace(/^\w+: /, '').replace(/, \w+ '.*'$/, '')} (${e.code})`
          : String(err);
        return problem(`-o: cannot write ${JSON.stringify(flags.output)}: ${reason}`, EXIT_FAILURE);
      }
    });
  return cmd;
}

/** "--node-id" -> "nodeId" (commander's attribute name). */
function flagKey(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

const LOCALITY_META = ['region', 'zone'] as const;

/**
 * Reads the sidecar registration from Consul and fills node id, service, ports and locality;
 * flags given on the command line (or by env) win. The locality, part by part:
 * - datacenter: the registration's datacenter (the local agent's, `/v1/agent/services`), else
 *   `/v1/agent/self` Config.Datacenter;
 * - region, zone: Meta.region / Meta.zone of the app's registration, else of the sidecar's
 *   (Consul copies the app's Meta to its sidecar by default), else the local node's meta
 *   (`/v1/agent/self` Meta), as the Consul source reads instances.
 * `from` says where each value came from, for messages about it ("*": everything else).
 */
async function fromConsul(
  flags: RawFlags,
  explicit: (key: string) => boolean,
): Promise<
  | {
      input: RawFlags;
      from: Partial<Record<string, string>>;
      /** The proxies registered with the same agent (this one included). */
      neighbours: { id: string; proxies: readonly ConsulAgentService[] };
    }
  | { usage: string }
  | { failure: string }
> {
  let client: ConsulClient;
  try {
    client = new ConsulClient(consulConnectionFromFlags(flags), { maxConnections: 2 });
  } catch (err) {
    if (err instanceof ConsulFlagError) return { usage: err.message };
    throw err;
  }
  try {
    const proxy = await lookupConsulProxy(client, String(flags.consulServiceId));
    if ('problem' in proxy) return { failure: `--consul-service-id: ${proxy.problem}` };
    const registration = `the Consul registration ${JSON.stringify(proxy.id)}`;
    const from: Partial<Record<string, string>> = { '*': registration };
    const locality: Partial<Record<'datacenter' | 'region' | 'zone', string>> = {};
    const wanted = (part: 'datacenter' | 'region' | 'zone'): boolean =>
      !explicit(part) && locality[part] === undefined;

    const sidecar = await client.agentService(proxy.id);
    const appId = sidecar?.Proxy?.DestinationServiceID;
    const app = appId ? await client.agentService(appId) : undefined;
    const dc = datacenterOf(sidecar);
    if (wanted('datacenter') && dc !== undefined) {
      locality.datacenter = dc;
      from.datacenter = `the datacenter of ${registration}`;
    }
    for (const part of LOCALITY_META) {
      for (const svc of [app, sidecar]) {
        const value = svc?.Meta?.[part];
        if (!wanted(part) || svc === undefined || value === undefined || value === '') continue;
        locality[part] = value;
        from[part] = `Meta.${part} of the Consul registration ${JSON.stringify(svc.ID)}`;
      }
    }
    if (wanted('datacenter') || LOCALITY_META.some(wanted)) {
      const self = await agentSelf(client);
      if (self && wanted('datacenter') && self.datacenter) {
        locality.datacenter = self.datacenter;
        from.datacenter = `the datacenter of the Consul agent at ${client.address}`;
      }
      for (const part of LOCALITY_META) {
        const value = self?.nodeMeta[part];
        if (!wanted(part) || value === undefined || value === '') continue;
        locality[part] = value;
        from[part] = `the node meta ${part} of Consul node ${JSON.stringify(self?.nodeName ?? '')}`;
      }
    }
    return {
      from,
      neighbours: { id: proxy.id, proxies: await client.agentProxies() },
      input: {
        ...flags,
        ...locality,
        nodeId: explicit('nodeId') ? flags.nodeId : proxy.id,
        service: explicit('service') ? flags.service : proxy.service,
        adminPort: explicit('adminPort') ? flags.adminPort : (proxy.adminPort ?? flags.adminPort),
        outboundPort: explicit('outboundPort')
          ? flags.outboundPort
          : (proxy.outboundPort ?? flags.outboundPort),
        dnsPort: explicit('dnsPort') ? flags.dnsPort : (proxy.dnsPort ?? flags.dnsPort),
      },
    };
  } catch (err) {
    if (err instanceof ConsulRequestError)
      return { failure: `--consul-service-id: ${err.message}` };
    throw err;
  } finally {
    client.destroy();
  }
}

/** `/v1/agent/services` entries carry the agent's datacenter (not in the client's type). */
function datacenterOf(svc: ConsulAgentService | undefined): string | undefined {
  const dc = (svc as { Datacenter?: unknown } | undefined)?.Datacenter;
  return typeof dc === 'string' && dc !== '' ? dc : undefined;
}

interface AgentSelf {
  readonly datacenter?: string;
  readonly nodeName?: string;
  /** The agent's node meta (`-node-meta`, `node_meta`). */
  readonly nodeMeta: Readonly<Record<string, string>>;
}

/**
 * `/v1/agent/self`: the local agent's datacenter, node name and node meta. It needs the ACL
 * permission agent:read, which a sidecar's token may lack: then (403) undefined, and the
 * locality comes from the registration and the flags only. The ConsulClient has no method for
 * this one read, so it is sent here with the same connection settings (TLS, token).
 */
function agentSelf(client: ConsulClient): Promise<AgentSelf | undefined> {
  const c = client.connection;
  const what = `Consul ${client.address}: GET /v1/agent/self`;
  const tls = c.tls;
  const options = {
    host: c.host,
    port: c.port,
    path: '/v1/agent/self',
    method: 'GET',
    timeout: 15_000,
    headers: c.token !== undefined ? { 'x-consul-token': c.token } : {},
    ...(c.secure
      ? {
          ...(tls?.ca !== undefined ? { ca: tls.ca } : {}),
          ...(tls?.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}),
          ...(tls?.serverName !== undefined ? { servername: tls.serverName } : {}),
          rejectUnauthorized: tls?.rejectUnauthorized ?? true,
        }
      : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (c.secure ? httpsRequest : httpRequest)(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (err) => reject(new ConsulRequestError(`${what}: ${err.message}`, 'http')));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status === 403) return resolve(undefined);
        if (status !== 200) {
          return reject(
            new ConsulRequestError(`${what}: HTTP ${status}: ${body.trim()}`, 'http', status),
          );
        }
        try {
          const self = JSON.parse(body) as {
            Config?: { Datacenter?: unknown; NodeName?: unknown };
            Meta?: Record<string, unknown> | null;
          };
          const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
          const nodeMeta: Record<string, string> = {};
          for (const [k, v] of Object.entries(self.Meta ?? {})) {
            if (typeof v === 'string') nodeMeta[k] = v;
          }
          const datacenter = text(self.Config?.Datacenter);
          const nodeName = text(self.Config?.NodeName);
          resolve({
            ...(datacenter !== undefined ? { datacenter } : {}),
            ...(nodeName !== undefined ? { nodeName } : {}),
            nodeMeta,
          });
        } catch (err) {
          reject(new ConsulRequestError(`${what}: ${(err as Error).message}`, 'invalid-response'));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) =>
      reject(new ConsulRequestError(`${what}: ${err.message}`, 'unreachable')),
    );
    req.end();
  });
}
