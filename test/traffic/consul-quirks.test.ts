// What Consul prints that is not what it looks like.
import { describe, expect, it } from 'vitest';
import { parseEntry } from '../../src/traffic/schema.js';

describe('Consul quirks', () => {
  it('service-defaults "Protocol": "" (an entry written without one) means no protocol', () => {
    const { entry } = parseEntry({
      Kind: 'service-defaults',
      Name: 'web',
      Protocol: '',
      UpstreamConfig: { Overrides: [{ Name: 'api', Limits: { MaxConnections: 7 } }] },
    });
    expect(entry).toMatchObject({ Kind: 'service-defaults', Name: 'web' });
    expect(entry && 'Protocol' in entry ? entry.Protocol : undefined).toBeUndefined();
    expect(() => parseEntry({ Kind: 'service-defaults', Name: 'web', Protocol: 'udp' })).toThrow(
      /Protocol: expected one of http \| http2 \| grpc \| tcp, got "udp"/,
    );
  });
});
