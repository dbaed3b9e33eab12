/**
 * Bearer tokens: HS256 JWTs signed with RUNWATCH_JWT_SECRET, verified with jose.
 * Claims (DESIGN.md "Authentication and tenancy"): `sub` (required), `inst`,
 * `env`, `scope` (space-separated), `exp`; runwatch's job-view tokens also carry
 * `job`, the one job they may read.
 *
 * Policy ({@link TokenPolicy}):
 * - the personal namespace is reserved: a token without `inst` acts in its
 *   user's own institute `user:<sub>`, and no `inst` claim may start with
 *   `user:` (else anyone who can choose an institute id could name someone
 *   else's personal institute);
 * - `exp` is required unless the operator allows tokens without it
 *   (RUNWATCH_ALLOW_TOKENS_WITHOUT_EXP=true, e.g. for long-lived worker tokens);
 * - a token may not live longer than RUNWATCH_MAX_TOKEN_TTL_DAYS (default 365):
 *   `exp − iat` (or `exp − now` without `iat` or with one in the future) above it is refused.
 */
import { randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Tenant } from '../domain/job.js';

export const SCOPES = ['jobs:read', 'jobs:write', 'jobs:control', 'activity:read', 'admin'] as const;
/** A permission a token can carry. */
export type Scope = (typeof SCOPES)[number];

/** Who is calling: the verified content of a token. */
export interface Viewer {
  userId: string;
  /** The institute and environment the caller acts in. */
  tenant: Tenant;
  scopes: ReadonlySet<Scope>;
  /** Token expiry, epoch ms; null when the token has no `exp`. */
  expiresAt: number | null;
  /** For a job-view token: the only job it may see; null otherwise. */
  jobId: string | null;
}

/** Why a token was refused. `missing` and `invalid` are final; `expired` is cured by a fresh token. */
export class AuthError extends Error {
  constructor(
    readonly reason: 'missing' | 'invalid' | 'expired',
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

const ID = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** Prefix of personal institutes (`user:<sub>`); reserved: no `inst` claim may start with it. */
export const PERSONAL_INSTITUTE_PREFIX = 'user:';

/** The personal institute of a user: where a token without `inst` acts. */
export const personalInstitute = (userId: string) => `${PERSONAL_INSTITUTE_PREFIX}${userId}`;

/** Which tokens {@link TokenVerifier} accepts beyond a valid signature and claims. */
export interface TokenPolicy {
  /** Accept tokens without `exp` (they never expire). Default false: refused as `invalid`. */
  allowWithoutExp?: boolean;
  /** Longest accepted lifetime in seconds (`exp − iat`, or `exp − now` without `iat`). Default {@link DEFAULT_MAX_TOKEN_TTL_SECONDS}. */
  maxTtlSeconds?: number;
}

/** Default longest token lifetime: 365 days, in seconds (RUNWATCH_MAX_TOKEN_TTL_DAYS). */
export const DEFAULT_MAX_TOKEN_TTL_SECONDS = 365 * 24 * 3600;

/** Claims accepted by {@link signToken}. */
export interface TokenClaims {
  sub: string;
  inst?: string;
  env?: string;
  scope: string;
  job?: string;
}

/** Extracts the token from `Bearer <token>`; null when absent or not a bearer header. */
export function parseBearer(header: string | null | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

/** Bounds of the verified-token cache of {@link TokenVerifier}: entries, and milliseconds an entry is kept. */
export const VERIFIED_TOKEN_CACHE = { max: 10_000, ttlMs: 10 * 60_000 } as const;

/** Verifies tokens against one HS256 secret, under a {@link TokenPolicy}; verified tokens are cached. */
export class TokenVerifier {
  private readonly key: Uint8Array;
  private readonly allowWithoutExp: boolean;
  private readonly maxTtlSeconds: number;
  /**
   * Tokens that passed {@link verify}, by their full text (signature included, so nothing unverified can
   * hit): a worker sends the same token with every report, and HMAC verification through WebCrypto was
   * the largest single cost of a `reportProgress` (~20 % of its CPU). Bounded in entries and age; a hit
   * still honours `exp`. Viewers are frozen, so no caller can change a cached one.
   */
  private readonly verified = new LRUCache<string, Viewer>({ max: VERIFIED_TOKEN_CACHE.max, ttl: VERIFIED_TOKEN_CACHE.ttlMs });
  constructor(secret: string, policy: TokenPolicy = {}) {
    this.key = new TextEncoder().encode(secret);
    this.allowWithoutExp = policy.allowWithoutExp ?? false;
    this.maxTtlSeconds = policy.maxTtlSeconds ?? DEFAULT_MAX_TOKEN_TTL_SECONDS;
  }

  /**
   * Verifies a token and returns its viewer.
   * @throws AuthError `missing` (no token), `expired` (past `exp`), `invalid` (anything else: bad
   *   signature or claims, an `inst` in the reserved `user:` namespace, no `exp` while the policy
   *   requires one, a lifetime over the policy's maximum).
   */
  async verify(token: string | null): Promise<Viewer> {
    if (!token) throw new AuthError('missing', 'missing bearer token');
    const cached = this.verified.get(token);
    if (cached) {
      if (cached.expiresAt === null || Date.now() < cached.expiresAt) return cached;
      this.verified.delete(token);
      throw new AuthError('expired', 'token expired');
    }
    const viewer = await this.verifyUncached(token);
    this.verified.set(token, viewer);
    return viewer;
  }

  /** {@link verify} without the cache: the signature check and every claim rule. */
  private async verifyUncached(token: string): Promise<Viewer> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'] }));
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new AuthError('expired', 'token expired');
      throw new AuthError('invalid', 'invalid token');
    }
    const { sub, inst, env, scope, job } = payload as Record<string, unknown>;
    if (typeof sub !== 'string' || !ID.test(sub)) throw new AuthError('invalid', 'invalid token: sub');
    for (const [name, value] of [['inst', inst], ['env', env], ['job', job]] as const) {
      if (value !== undefined && (typeof value !== 'string' || !ID.test(value))) throw new AuthError('invalid', `invalid token: ${name}`);
    }
    if (typeof inst === 'string' && inst.startsWith(PERSONAL_INSTITUTE_PREFIX))
      throw new AuthError('invalid', `invalid token: inst may not start with "${PERSONAL_INSTITUTE_PREFIX}" (reserved for personal institutes)`);
    if (scope !== undefined && typeof scope !== 'string') throw new AuthError('invalid', 'invalid token: scope');
    const { exp, iat } = payload;
    if (exp === undefined) {
      if (!this.allowWithoutExp) throw new AuthError('invalid', 'invalid token: no exp (tokens must expire)');
    } else {
      // From `iat`, but never from the future (an `iat` ahead of now would stretch the lifetime).
      const now = Math.floor(Date.now() / 1000);
      const from = typeof iat === 'number' ? Math.min(iat, now) : now;
      if (exp - from > this.maxTtlSeconds)
        throw new AuthError('invalid', `invalid token: lifetime over the maximum of ${this.maxTtlSeconds} seconds`);
    }
    const scopes = new Set<Scope>();
    for (const s of (scope ?? '').split(' ')) if ((SCOPES as readonly string[]).includes(s)) scopes.add(s as Scope);
    if (typeof job === 'string') for (const s of scopes) if (s !== 'jobs:read') scopes.delete(s);
    return Object.freeze({
      userId: sub,
      tenant: { institute: (inst as string | undefined) ?? personalInstitute(sub), environment: (env as string | undefined) ?? 'default' },
      scopes,
      expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null,
      jobId: (job as string | undefined) ?? null,
    });
  }
}

/**
 * Signs a token with `iat` = now and `exp` = now + `ttlSeconds`.
 * Used by dev mode, `runwatch token` and job-view tokens. An `inst` equal to
 * the user's personal institute (`user:<sub>`) is left out, which means the same.
 * @throws Error for an `inst` in the reserved `user:` namespace that is not the user's own.
 */
export async function signToken(secret: string, claims: TokenClaims, ttlSeconds: number): Promise<string> {
  const body: Record<string, unknown> = { scope: claims.scope };
  if (claims.inst && claims.inst !== personalInstitute(claims.sub)) {
    if (claims.inst.startsWith(PERSONAL_INSTITUTE_PREFIX))
      throw new Error(`inst may not start with "${PERSONAL_INSTITUTE_PREFIX}" (reserved for personal institutes)`);
    body.inst = claims.inst;
  }
  if (claims.env) body.env = claims.env;
  if (claims.job) body.job = claims.job;
  return new SignJWT(body)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}

/** A random secret for dev mode (48 bytes, base64url). */
export const randomSecret = () => randomBytes(48).toString('base64url');

/** May this viewer see this job? Same tenant, and for a job-view token the same job. */
export function canSeeJob(viewer: Viewer, job: { id: string; tenant: Tenant }): boolean {
  return (
    job.tenant.institute === viewer.tenant.institute &&
    job.tenant.environment === viewer.tenant.environment &&
    (viewer.jobId === null || viewer.jobId === job.id)
  );
}
