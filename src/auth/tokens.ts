/**
 * Bearer tokens: HS256 JWTs signed with RUNWATCH_JWT_SECRET, verified with jose.
 * Claims (DESIGN.md "Authentication and tenancy"): `sub` (required), `inst`,
 * `env`, `scope` (space-separated), `exp`; runwatch's job-view tokens also carry
 * `job`, the one job they may read.
 */
import { randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
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

/** Verifies tokens against one HS256 secret. */
export class TokenVerifier {
  private readonly key: Uint8Array;
  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  /**
   * Verifies a token and returns its viewer.
   * @throws AuthError `missing` (no token), `expired` (past `exp`), `invalid` (anything else).
   */
  async verify(token: string | null): Promise<Viewer> {
    if (!token) throw new AuthError('missing', 'missing bearer token');
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
    if (scope !== undefined && typeof scope !== 'string') throw new AuthError('invalid', 'invalid token: scope');
    const scopes = new Set<Scope>();
    for (const s of (scope ?? '').split(' ')) if ((SCOPES as readonly string[]).includes(s)) scopes.add(s as Scope);
    if (typeof job === 'string') for (const s of scopes) if (s !== 'jobs:read') scopes.delete(s);
    return {
      userId: sub,
      tenant: { institute: (inst as string | undefined) ?? `user:${sub}`, environment: (env as string | undefined) ?? 'default' },
      scopes,
      expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null,
      jobId: (job as string | undefined) ?? null,
    };
  }
}

/**
 * Signs a token. `ttlSeconds` sets `exp` (seconds from now).
 * Used by dev mode, `runwatch token` and job-view tokens.
 */
export async function signToken(secret: string, claims: TokenClaims, ttlSeconds: number): Promise<string> {
  const body: Record<string, unknown> = { scope: claims.scope };
  if (claims.inst) body.inst = claims.inst;
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
