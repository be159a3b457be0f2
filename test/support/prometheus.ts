// A strict reader of the Prometheus text exposition format (version 0.0.4): every line must be
// a comment (# HELP / # TYPE / other), empty, or `name{labels} value [timestamp]`.
const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|NaN|\+Inf|-Inf))( -?\d+)?$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** Samples keyed by `name{labels}` as written. Throws naming the first bad line. */
export function parsePrometheusText(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  text.split('\n').forEach((line, i) => {
    if (line === '') return;
    if (line.startsWith('# TYPE ')) {
      const [, , , type] = line.split(' ');
      if (!TYPES.has(type ?? '')) throw new Error(`line ${i + 1}: bad TYPE: ${line}`);
      return;
    }
    if (line.startsWith('#')) return;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1}: not a Prometheus sample: ${line}`);
    samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  });
  return samples;
}
