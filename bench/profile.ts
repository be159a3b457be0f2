// Self time per function from a V8 .cpuprofile (what `node --cpu-prof` and the inspector's
// Profiler.stop produce): the hot spots to report when a target is missed.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from './ipc.js';
import type { ProfileEntry } from './types.js';

interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }>;
  samples: number[];
  timeDeltas: number[];
}

function where(url: string, line: number): string {
  if (!url) return '';
  let path = url;
  if (url.startsWith('file://')) {
    try {
      path = relative(REPO_ROOT, fileURLToPath(url));
    } catch {
      // keep the URL
    }
  }
  // Code loaded through tsx reports line 0 for everything: the file alone is more honest.
  return line > 0 ? `${path}:${line + 1}` : path;
}

/** Top `n` functions by self time, idle excluded from the total. */
export function topSelfTime(file: string, n = 20): { totalMs: number; top: ProfileEntry[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, { fn: string; where: string; us: number }>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    // timeDeltas[i] is the time before sample i; the time after it belongs to it.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (!node || dt <= 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    totalUs += dt;
    const key = `${functionName}\u0000${url}\u0000${lineNumber}`;
    const entry = selfUs.get(key) ?? {
      fn: functionName || '(anonymous)',
      where: where(url, lineNumber),
      us: 0,
    };
    entry.us += dt;
    selfUs.set(key, entry);
  }
  const top = [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((e) => ({
      fn: e.fn,
      where: e.where,
      selfMs: Math.round(e.us / 100) / 10,
      selfPct: totalUs ? Math.round((e.us / totalUs) * 1000) / 10 : 0,
    }));
  return { totalMs: Math.round(totalUs / 1000), top };
}
