/**
 * Share links: short-lived, read-only tokens for one job (claim `job`), so a
 * dashboard link can be sent to someone without an account token.
 *
 * Policy: the caller needs `jobs:read` and must see the job (another tenant's
 * job is NOT_FOUND, exactly like a missing one); a job-view token cannot mint
 * another (that would let a link outlive its own expiry). The new token keeps
 * the caller's user and tenant, carries only `jobs:read`, and lives
 * {@link VIEW_TOKEN_TTL} seconds (default 3600, from 1 s to 7 days).
 */
import { decodeJwt } from 'jose';
import { canSeeJob, signToken, type Viewer } from '../auth/tokens.js';
import type { JobStore } from '../backends/types.js';
import { badInput, DomainError, notFound } from '../domain/errors.js';

/** Bounds and default of a job-view token's lifetime, in seconds. */
export const VIEW_TOKEN_TTL = { minSeconds: 1, maxSeconds: 7 * 24 * 3600, defaultSeconds: 3600 } as const;

/** A minted job-view token. */
export interface JobViewToken {
  /** The bearer token (HS256 JWT with `job`, `scope: jobs:read`). */
  token: string;
  jobId: string;
  /** Expiry, epoch milliseconds. */
  expiresAt: number;
  /** Dashboard path that opens the job with this token: `/jobs/<id>#token=<token>` (the token stays in the fragment, never sent to servers). */
  dashboardPath: string;
}

export class ShareService {
  constructor(
    private readonly secret: string,
    private readonly store: JobStore,
  ) {}

  /**
   * Mints a read-only token for one job the viewer can see.
   * @param ttlSeconds lifetime in seconds, {@link VIEW_TOKEN_TTL}.minSeconds..maxSeconds.
   * @throws DomainError NOT_FOUND (no such job in the viewer's tenant), BAD_USER_INPUT (ttl out of bounds),
   *   FORBIDDEN (the caller is itself a job-view token).
   */
  async createJobViewToken(viewer: Viewer, jobId: string, ttlSeconds: number = VIEW_TOKEN_TTL.defaultSeconds): Promise<JobViewToken> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < VIEW_TOKEN_TTL.minSeconds || ttlSeconds > VIEW_TOKEN_TTL.maxSeconds) {
      throw badInput('ttlSeconds', `ttlSeconds must be a whole number from ${VIEW_TOKEN_TTL.minSeconds} to ${VIEW_TOKEN_TTL.maxSeconds}`);
    }
    if (viewer.jobId !== null) throw new DomainError('FORBIDDEN', 'a job-view token cannot create other tokens');
    const job = await this.store.get(jobId);
    if (!job || !canSeeJob(viewer, job)) throw notFound(jobId);
    const token = await signToken(
      this.secret,
      { sub: viewer.userId, inst: viewer.tenant.institute, env: viewer.tenant.environment, scope: 'jobs:read', job: job.id },
      ttlSeconds,
    );
    const expiresAt = (decodeJwt(token).exp ?? 0) * 1000;
    return { token, jobId: job.id, expiresAt, dashboardPath: `/jobs/${encodeURIComponent(job.id)}#token=${token}` };
  }
}
