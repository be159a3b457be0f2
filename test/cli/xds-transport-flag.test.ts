// serve --xds-transport (LUCID_XDS_TRANSPORT): parsed, named in errors, http2 by default, and
// in --help with its env var. (What each transport serves: test/xds/transport-parity.test.ts.)
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { xdsTransportOption } from '../../src/cli/xds-transport-flag.js';

function parse(args: string[]): Record<string, unknown> {
  const cmd = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  cmd.addOption(xdsTransportOption());
  cmd.parse(args, { from: 'user' });
  return cmd.opts();
}

afterEach(() => {
  delete process.env.LUCID_XDS_TRANSPORT;
});

describe('serve --xds-transport', () => {
  it('defaults to http2; grpc-js when asked, by flag or LUCID_XDS_TRANSPORT', () => {
    expect(parse([]).xdsTransport).toBe('http2');
    expect(parse(['--xds-transport', 'grpc-js']).xdsTransport).toBe('grpc-js');
    process.env.LUCID_XDS_TRANSPORT = 'grpc-js';
    expect(parse([]).xdsTransport).toBe('grpc-js');
  });

  it('a bad name names the flag and the value', () => {
    expect(() => parse(['--xds-transport', 'quic'])).toThrow(
      '--xds-transport: expected one of http2 | grpc-js, got "quic"',
    );
  });

  it('--help documents it with its env var', () => {
    const cmd = new Command().addOption(xdsTransportOption());
    expect(cmd.helpInformation()).toMatch(
      /--xds-transport <name>[\s\S]*http2 \| grpc-js[\s\S]*LUCID_XDS_TRANSPORT/,
    );
  });
});
