// `dig` (BIND 9, installed by scripts/tools/dig.sh) against a DNS server (127.0.0.1 unless told), its
// output parsed: what an operator would read.
import { execFile } from 'node:child_process';
import { toolPath } from './tools.js';

export interface DigRecord {
  /** Fully qualified, with the trailing dot, as dig prints it. */
  readonly name: string;
  readonly ttl: number;
  readonly type: string;
  readonly data: string;
}

export interface DigResult {
  /** NOERROR, NXDOMAIN, REFUSED, FORMERR, SERVFAIL... */
  readonly status: string;
  /** Header flags: qr, aa, tc, rd, ra... */
  readonly flags: readonly string[];
  readonly answers: readonly DigRecord[];
  readonly authority: readonly DigRecord[];
  readonly additional: readonly DigRecord[];
  /** dig's whole output, for assertion messages. */
  readonly output: string;
}

const SECTIONS = { ANSWER: 'answers', AUTHORITY: 'authority', ADDITIONAL: 'additional' } as const;

/** dig @SERVER -p PORT NAME TYPE [options]; rejects when dig gets no answer at all. */
export function dig(
  port: number,
  name: string,
  type = 'A',
  options: readonly string[] = [],
  server = '127.0.0.1',
): Promise<DigResult> {
  const args = [`@${server}`, '-p', String(port), '+tries=1', '+time=3', name, type, ...options];
  return new Promise((resolve, reject) => {
    execFile(toolPath('dig'), args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      const status = /status: ([A-Z]+)/.exec(stdout)?.[1];
      if (!status) {
        reject(new Error(`dig ${args.join(' ')}: no answer (${err?.message ?? ''})\n${output}`));
        return;
      }
      const flags = /;; flags: ([^;]*);/.exec(stdout)?.[1]?.trim().split(/\s+/) ?? [];
      const parsed: Record<(typeof SECTIONS)[keyof typeof SECTIONS], DigRecord[]> = {
        answers: [],
        authority: [],
        additional: [],
      };
      // The last response printed is the one that counts (after a TC retry over TCP, say).
      const start = stdout.lastIndexOf(';; ->>HEADER<<-');
      let section: DigRecord[] | undefined;
      for (const line of stdout.slice(start).split('\n')) {
        const header = /^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:/.exec(line);
        if (header) {
          section = parsed[SECTIONS[header[1] as keyof typeof SECTIONS]];
          continue;
        }
        if (line.trim() === '' || line.startsWith(';')) {
          if (line.trim() === '') section = undefined;
          continue;
        }
        const [rname, ttl, , rtype, ...data] = line.split(/\s+/);
        section?.push({ name: rname!, ttl: Number(ttl), type: rtype!, data: data.join(' ') });
      }
      const last = stdout.slice(start);
      resolve({
        status: /status: ([A-Z]+)/.exec(last)?.[1] ?? status,
        flags: /;; flags: ([^;]*);/.exec(last)?.[1]?.trim().split(/\s+/) ?? flags,
        ...parsed,
        output,
      });
    });
  });
}
