// proxy-defaults Tracing and AccessLogs, service-defaults AccessLogs: what is accepted and how
// each rejection names the entry, the field and the value.
import { describe, expect, it } from 'vitest';
import { parseEntry } from '../../src/traffic/schema.js';
import { parseHostPort } from '../../src/traffic/observability.js';
import { problems } from './entry-problems.js';

const proxyDefaults = (fields: Record<string, unknown>) => ({
  Kind: 'proxy-defaults',
  Name: 'global',
  ...fields,
});

// AccessLogs as Consul prints it: its zero Type, Path and formats (empty strings are unset).
const consulAccessLogs = {
  Enabled: true,
  DisableListenerLogs: false,
  Type: '',
  Path: '',
  JSONFormat: '',
  TextFormat: '',
};

describe('proxy-defaults Tracing', () => {
  it('reads the collector and fills the defaults', () => {
    const { entry, unsupported } = parseEntry(
      proxyDefaults({ Tracing: { Collector: 'jaeger:4317' } }),
    );
    expect(unsupported).toEqual([]);
    expect(entry).toMatchObject({
      Tracing: {
        Provider: 'opentelemetry',
        Collector: { host: 'jaeger', port: 4317 },
        SamplingPercent: 100,
      },
    });
    const ipv6 = parseEntry(
      proxyDefaults({ Tracing: { Collector: '[::1]:4317', SamplingPercent: 2.5 } }),
    ).entry;
    expect(ipv6).toMatchObject({
      Tracing: { Collector: { host: '::1', port: 4317 }, SamplingPercent: 2.5 },
    });
  });

  it('rejects a bad collector, provider or percentage by name', () => {
    expect(problems(proxyDefaults({ Tracing: { Collector: 'jaeger' } }))).toEqual([
      'proxy-defaults/global: Tracing.Collector: expected HOST:PORT (e.g. 127.0.0.1:4317 or jaeger:4317), got "jaeger"',
    ]);
    expect(
      problems(
        proxyDefaults({ Tracing: { Provider: 'zipkin', Collector: 'a:1', SamplingPercent: 101 } }),
      ),
    ).toEqual([
      'proxy-defaults/global: Tracing.Provider: expected one of opentelemetry, got "zipkin"',
      'proxy-defaults/global: Tracing.SamplingPercent: expected a number 0-100, got 101',
    ]);
    expect(problems(proxyDefaults({ Tracing: { collector: 'a:1' } }))).toContain(
      "proxy-defaults/global: Tracing: unknown field collector (Consul's JSON spells it Collector)",
    );
  });

  it('parseHostPort (shared with serve --tracing-otlp)', () => {
    expect(parseHostPort('127.0.0.1:4317')).toEqual({ host: '127.0.0.1', port: 4317 });
    expect(parseHostPort('a:0')).toMatch(/expected HOST:PORT/);
    expect(parseHostPort('a:70000')).toMatch(/expected HOST:PORT/);
    expect(parseHostPort('http://a:4317')).toMatch(/got "http:\/\/a:4317"/);
  });
});

describe('AccessLogs', () => {
  it('proxy-defaults: Consul output as printed (empty strings are unset)', () => {
    const { entry, unsupported } = parseEntry(
      proxyDefaults({
        AccessLogs: consulAccessLogs,
      }),
    );
    expect(unsupported).toEqual([]);
    expect(entry).toMatchObject({ AccessLogs: { Enabled: true, Type: 'stdout' } });
  });

  it('service-defaults: a file with a JSON format', () => {
    const { entry } = parseEntry({
      Kind: 'service-defaults',
      Name: 'world',
      AccessLogs: {
        Enabled: true,
        Type: 'file',
        Path: '/var/log/world.log',
        JSONFormat: '{"code":"%RESPONSE_CODE%","peer":{"uri":"%DOWNSTREAM_PEER_URI_SAN%"}}',
      },
    });
    expect(entry).toMatchObject({
      AccessLogs: {
        Type: 'file',
        Path: '/var/log/world.log',
        JSONFormat: { code: '%RESPONSE_CODE%', peer: { uri: '%DOWNSTREAM_PEER_URI_SAN%' } },
      },
    });
  });

  it("enforces Consul's rules with the field and value", () => {
    expect(problems(proxyDefaults({ AccessLogs: { Enabled: true, Type: 'file' } }))).toEqual([
      'proxy-defaults/global: AccessLogs.Path: expected a file path with Type file, got none',
    ]);
    expect(
      problems(proxyDefaults({ AccessLogs: { Enabled: true, Type: 'stdout', Path: '/tmp/x' } })),
    ).toEqual([
      'proxy-defaults/global: AccessLogs.Path: only allowed with Type file, got "/tmp/x" with Type stdout',
    ]);
    expect(
      problems(
        proxyDefaults({ AccessLogs: { Enabled: true, JSONFormat: '{"a":', TextFormat: 'x' } }),
      ),
    ).toEqual([
      expect.stringMatching(
        /^proxy-defaults\/global: AccessLogs.JSONFormat: expected a JSON object as a string, got "\{\\"a\\":"/,
      ),
    ]);
    expect(
      problems(proxyDefaults({ AccessLogs: { JSONFormat: '{"a":"b"}', TextFormat: 'x' } })),
    ).toEqual([
      'proxy-defaults/global: AccessLogs.TextFormat: expected one of JSONFormat and TextFormat, got both',
    ]);
    expect(problems(proxyDefaults({ AccessLogs: { Type: 'syslog' } }))).toEqual([
      'proxy-defaults/global: AccessLogs.Type: expected one of stdout | stderr | file | otlp, got "syslog"',
    ]);
  });

  it('Type otlp (extension): formats allowed, Path refused', () => {
    const { entry } = parseEntry(
      proxyDefaults({ AccessLogs: { Enabled: true, Type: 'otlp', TextFormat: '%RESPONSE_CODE%' } }),
    );
    expect(entry).toMatchObject({
      AccessLogs: { Enabled: true, Type: 'otlp', TextFormat: '%RESPONSE_CODE%' },
    });
    expect(
      problems(proxyDefaults({ AccessLogs: { Enabled: true, Type: 'otlp', Path: '/tmp/x' } })),
    ).toEqual([
      'proxy-defaults/global: AccessLogs.Path: only allowed with Type file, got "/tmp/x" with Type otlp',
    ]);
  });

  it("Config.lucid_access_logs_type otlp (for Consul, which refuses Type otlp) is AccessLogs' Type", () => {
    const { entry, unsupported } = parseEntry(
      proxyDefaults({
        Config: { lucid_access_logs_type: 'otlp' },
        AccessLogs: consulAccessLogs,
      }),
    );
    expect(unsupported).toEqual([]);
    expect(entry).toMatchObject({ AccessLogs: { Enabled: true, Type: 'otlp' } });
    expect(
      problems(
        proxyDefaults({
          Config: { lucid_access_logs_type: 'otlp' },
          AccessLogs: { Enabled: true, Type: 'file', Path: '/tmp/x' },
        }),
      ),
    ).toEqual([
      'proxy-defaults/global: Config.lucid_access_logs_type: expected either AccessLogs.Type file or Config.lucid_access_logs_type, got both',
    ]);
    expect(problems(proxyDefaults({ Config: { lucid_access_logs_type: 'syslog' } }))).toEqual([
      'proxy-defaults/global: Config.lucid_access_logs_type: expected one of otlp, got "syslog"',
    ]);
  });

  it('DisableListenerLogs in use is listed as unsupported', () => {
    const { unsupported } = parseEntry(
      proxyDefaults({ AccessLogs: { Enabled: true, DisableListenerLogs: true } }),
    );
    expect(unsupported).toEqual([
      { kind: 'proxy-defaults', name: 'global', field: 'AccessLogs.DisableListenerLogs' },
    ]);
  });
});

describe("proxy-defaults Config's lucid_tracing_* keys (for Consul)", () => {
  it('read as Tracing: collector, percent as a number or a string, default 100', () => {
    const { entry, unsupported } = parseEntry(
      proxyDefaults({
        Config: {
          protocol: 'http',
          lucid_tracing_collector: 'jaeger:4317',
          lucid_tracing_sample_percent: 10,
        },
      }),
    );
    expect(unsupported).toEqual([]);
    expect(entry).toMatchObject({
      Config: { protocol: 'http' },
      Tracing: {
        Provider: 'opentelemetry',
        Collector: { host: 'jaeger', port: 4317 },
        SamplingPercent: 10,
      },
    });
    const text = parseEntry(
      proxyDefaults({
        Config: { lucid_tracing_collector: '[::1]:4317', lucid_tracing_sample_percent: '2.5' },
      }),
    ).entry;
    expect(text).toMatchObject({
      Tracing: { Collector: { host: '::1', port: 4317 }, SamplingPercent: 2.5 },
    });
    const plain = parseEntry(proxyDefaults({ Config: { lucid_tracing_collector: 'a:1' } })).entry;
    expect(plain).toMatchObject({ Tracing: { SamplingPercent: 100 } });
    expect(parseEntry(proxyDefaults({ Config: { protocol: 'http' } })).entry).not.toHaveProperty(
      'Tracing',
    );
  });

  it('rejects a bad value, a percent without a collector, and both forms at once, by name', () => {
    expect(problems(proxyDefaults({ Config: { lucid_tracing_collector: 'jaeger' } }))).toEqual([
      'proxy-defaults/global: Config.lucid_tracing_collector: expected HOST:PORT (e.g. 127.0.0.1:4317 or jaeger:4317), got "jaeger"',
    ]);
    expect(
      problems(
        proxyDefaults({
          Config: { lucid_tracing_collector: 'a:1', lucid_tracing_sample_percent: '150' },
        }),
      ),
    ).toEqual([
      'proxy-defaults/global: Config.lucid_tracing_sample_percent: expected a number 0-100, got 150',
    ]);
    expect(problems(proxyDefaults({ Config: { lucid_tracing_sample_percent: 5 } }))).toEqual([
      'proxy-defaults/global: Config.lucid_tracing_collector: expected a collector HOST:PORT with Config.lucid_tracing_sample_percent, got none',
    ]);
    expect(
      problems(
        proxyDefaults({
          Tracing: { Collector: 'a:1' },
          Config: { lucid_tracing_collector: 'b:2' },
        }),
      ),
    ).toEqual([
      'proxy-defaults/global: Config.lucid_tracing_collector: expected either Tracing or Config.lucid_tracing_collector, got both',
    ]);
  });
});
