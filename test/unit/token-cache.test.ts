/**
 * The verified-token cache of TokenVerifier: a worker's token is verified
 * once, later calls return the same viewer without the signature check, and
 * a cached token still expires at its `exp`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AuthError, signToken, TokenVerifier } from '../../src/auth/tokens.js';

const SECRET = 'unit-test-secret-0123456789abcdef-0123456789';

afterEach(() => {
  vi.useRealTimers();
});

describe('TokenVerifier cache', () => {
  it('returns the same frozen viewer for the same token', async () => {
    const verifier = new TokenVerifier(SECRET);
    const token = await signToken(SECRET, { sub: 'worker', inst: 'acme', scope: 'jobs:write' }, 3600);
    const first = await verifier.verify(token);
    const second = await verifier.verify(token);
    expect(second).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(first).toMatchObject({ userId: 'worker', tenant: { institute: 'acme', environment: 'default' } });
  });

  it('refuses a cached token as expired once its exp has passed', async () => {
    const verifier = new TokenVerifier(SECRET);
    const token = await signToken(SECRET, { sub: 'worker', inst: 'acme', scope: 'jobs:write' }, 60);
    const viewer = await verifier.verify(token);
    vi.useFakeTimers({ now: viewer.expiresAt! + 1, toFake: ['Date'] });
    const error = await verifier.verify(token).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).reason).toBe('expired');
  });

  it('caches nothing for a token with a bad signature', async () => {
    const verifier = new TokenVerifier(SECRET);
    const forged = await signToken(`${SECRET}-other`, { sub: 'mallory', inst: 'acme', scope: 'admin' }, 3600);
    for (let i = 0; i < 2; i++) {
      const error = await verifier.verify(forged).catch((e: unknown) => e);
      expect((error as AuthError).reason).toBe('invalid');
    }
  });
});
