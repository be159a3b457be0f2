// The CA issues leaves for at most maxServices claimed services: with `--auth none` the
// service is whatever a node claims, and each leaf is kept and renewed.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryCaStore, openCa, type OpenedCa } from '../../src/ca/index.js';
import { CaSecretProvider } from '../../src/security/ca-secrets.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { waitFor } from '../support/wait.js';

let ca: OpenedCa | undefined;
afterEach(() => {
  ca?.stop();
  ca = undefined;
});

describe('leaves per claimed service', () => {
  it('issues leaves for at most maxServices services; known ones keep theirs', async () => {
    ca = await openCa({ store: new MemoryCaStore(), env: {} });
    const provider = new CaSecretProvider(ca.leaves, silentLogger, 3);
    for (const s of ['a', 'b', 'c']) provider.identity(s);
    await waitFor(() => ['a', 'b', 'c'].every((s) => provider.identity(s) !== undefined), {
      what: 'leaves for a, b and c',
    });
    // Invented names past the bound get nothing, however often they ask: no issue is started.
    for (let i = 0; i < 50; i++) expect(provider.identity(`made-up-${i}`)).toBeUndefined();
    expect(provider.serviceCount).toBe(3);
    expect(ca.leaves.services()).not.toContain('made-up-0');
    expect(provider.identity('a')).toBeDefined();
  });
});
