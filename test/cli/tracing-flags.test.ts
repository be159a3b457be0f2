// serve's tracing flags and environment: --tracing-otlp / --tracing-sample, TRACING_ENABLED
// with OTEL_EXPORTER_OTLP_ENDPOINT; errors name the flag or variable and the value.
import { describe, expect, it } from 'vitest';
import { TracingFlagError, tracingFromFlags } from '../../src/cli/tracing-flags.js';
import { runCli } from '../support/cli-process.js';

async function cli(args: string[], env: Record<string, string> = {}) {
  const r = await runCli(args, env);
  return { code: r.code, output: r.stdout + r.stderr };
}

describe('tracingFromFlags', () => {
  it('--tracing-otlp wins; off without it unless TRACING_ENABLED', () => {
    const collector = { host: 'jaeger', port: 4317 };
    expect(tracingFromFlags({ tracingOtlp: collector, tracingSample: 10 }, {})).toEqual({
      collector,
      samplingPercent: 10,
    });
    expect(
      tracingFromFlags(
        { tracingOtlp: collector, tracingSample: 100 },
        { TRACING_ENABLED: 'false' },
      ),
    ).toEqual({ collector, samplingPercent: 100 });
    expect(tracingFromFlags({ tracingSample: 100 }, {})).toBeUndefined();
    expect(
      tracingFromFlags(
        { tracingSample: 100 },
        { TRACING_ENABLED: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:1' },
      ),
    ).toBeUndefined();
  });

  it('TRACING_ENABLED=true reads OTEL_EXPORTER_OTLP_ENDPOINT (default localhost:4317)', () => {
    expect(
      tracingFromFlags(
        { tracingSample: 50 },
        { TRACING_ENABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel.example:4317/' },
      ),
    ).toEqual({ collector: { host: 'otel.example', port: 4317 }, samplingPercent: 50 });
    expect(tracingFromFlags({ tracingSample: 100 }, { TRACING_ENABLED: '1' })).toEqual({
      collector: { host: 'localhost', port: 4317 },
      samplingPercent: 100,
    });
  });

  it('a malformed variable is an error naming it and the value', () => {
    expect(() =>
      tracingFromFlags({ tracingSample: 100 }, { TRACING_ENABLED: 'yes please' }),
    ).toThrow(new TracingFlagError('TRACING_ENABLED: expected true or false, got "yes please"'));
    expect(() =>
      tracingFromFlags(
        { tracingSample: 100 },
        { TRACING_ENABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://collector' },
      ),
    ).toThrow(
      'OTEL_EXPORTER_OTLP_ENDPOINT: expected http://HOST:PORT or HOST:PORT, got "grpc://collector"',
    );
  });
});

describe('lucid-mesh serve tracing flags', () => {
  it('--help documents them; bad values exit 2 naming the flag or variable', async () => {
    // One process each, started together: the CLI's start-up is most of the time.
    const [help, otlp, sample, env] = await Promise.all([
      cli(['serve', '--help']),
      cli(['serve', '--tracing-otlp', 'jaeger']),
      cli(['serve', '--tracing-sample', '150']),
      cli(['serve', '--catalog', 'examples/catalog.yaml'], { TRACING_ENABLED: 'on' }),
    ]);
    expect(help.code).toBe(0);
    expect(help.output).toContain('--tracing-otlp <host:port>');
    expect(help.output).toContain('--tracing-sample <percent>');
    expect(help.output).toContain('TRACING_ENABLED');
    expect(otlp.code).toBe(2);
    expect(otlp.output).toContain(
      '--tracing-otlp: expected HOST:PORT (e.g. 127.0.0.1:4317 or jaeger:4317), got "jaeger"',
    );
    expect(sample.code).toBe(2);
    expect(sample.output).toContain('--tracing-sample: expected a percentage 0-100, got "150"');
    expect(env.code).toBe(2);
    expect(env.output).toContain('TRACING_ENABLED: expected true or false, got "on"');
  }, 60_000);
});
