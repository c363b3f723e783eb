/**
 * Identity and authorization. Identity comes only from the verified client
 * certificate: CN = user name, OU = role. Handlers never see the job library
 * itself, only the {@link ScopedJobs} view built here for the caller, so no
 * handler can reach a job its caller may not see.
 */
import type { PeerCertificate } from 'node:tls';
import { ErrorCode, JobworkerError } from '../errors.js';
import { onAbort } from '../signals.js';
import type {
  AttachOptions,
  Attachment,
  DeleteOptions,
  FieldNames,
  JobSpec,
  Jobs,
  JobStatus,
  OutputEvent,
  StopOptions,
  WatchEvent,
} from '../job/index.js';
import type { StreamQuota } from './quota.js';

/** Roles known to the server. `user`: own jobs only; `admin`: every job, and host networking. */
export const ROLES = ['user', 'admin'] as const;
/** One of {@link ROLES}. */
export type Role = (typeof ROLES)[number];

/** User names (certificate CN): a portable POSIX-like login name. */
export const USER_NAME = /^[a-z_][a-z0-9_.-]{0,63}$/;

/** The authenticated caller of one call. */
export interface Principal {
  readonly name: string;
  readonly role: Role;
}

/** The subject attribute `key` when it occurs exactly once, else undefined. */
function single(
  subject: PeerCertificate['subject'] | undefined,
  key: 'CN' | 'OU',
): string | undefined {
  const value: unknown = subject?.[key];
  return typeof value === 'string' ? value : undefined;
}

/**
 * The caller of a call, from grpc-js's `getAuthContext().sslPeerCertificate`
 * (present only when the TLS layer verified the chain). Throws
 * `unauthenticated` without a usable certificate or user name and
 * `permission_denied` "unknown role" for an OU that is not a role.
 */
export function principalOf(cert: Pick<PeerCertificate, 'subject'> | undefined): Principal {
  if (cert === undefined) {
    throw new JobworkerError(ErrorCode.Unauthenticated, 'no verified client certificate');
  }
  const name = single(cert.subject, 'CN');
  if (name === undefined || !USER_NAME.test(name)) {
    throw new JobworkerError(
      ErrorCode.Unauthenticated,
      `client certificate common name ${JSON.stringify(name ?? null)} is not a valid user name`,
    );
  }
  const role = single(cert.subject, 'OU');
  if (!ROLES.includes(role as Role)) {
    throw new JobworkerError(
      ErrorCode.PermissionDenied,
      `unknown role ${JSON.stringify(role ?? null)}`,
    );
  }
  return { name, role: role as Role };
}

/** Cause of the not_found given for another owner's job: invisible to the client, visible to the audit log. */
const HIDDEN_JOB = 'job exists but belongs to another owner';

/** The error for a job that does not exist or that the caller may not see: the client cannot tell which. */
export function jobNotFound(id: string, hidden = false): JobworkerError {
  return new JobworkerError(
    ErrorCode.NotFound,
    `job ${id} not found`,
    hidden ? { cause: HIDDEN_JOB } : {},
  );
}

/** Whether `err` hid another owner's job (audited as denied, answered as not found). */
export function isHiddenJob(err: unknown): boolean {
  return err instanceof JobworkerError && err.cause === HIDDEN_JOB;
}

/**
 * The job library as one caller may use it: {@link Jobs} with the caller as
 * owner and stopper, only its own jobs visible unless it is an admin (a
 * user's list filter is forced to its own jobs). Every method throws
 * JobworkerError.
 */
export interface ScopedJobs extends Pick<
  Jobs,
  'get' | 'list' | 'count' | 'output' | 'signal' | 'wait' | 'watch'
> {
  readonly principal: Principal;
  start(spec: JobSpec, signal: AbortSignal, names?: FieldNames): Promise<JobStatus>;
  stop(id: string, options: StopOptions): Promise<JobStatus>;
  delete(id: string, options: DeleteOptions): Promise<void>;
  /** Attaches to the job's stdin (writer) or only watches (reader); its output is read with `output`. */
  attach(id: string, options: AttachOptions): Attachment;
}

/** Rewrites any not_found to the one message, so the library's wording cannot tell jobs apart. */
function sameNotFound(id: string, err: unknown): unknown {
  return err instanceof JobworkerError && err.code === ErrorCode.NotFound ? jobNotFound(id) : err;
}

/** Builds the view of `jobs` that `principal` may use. */
export function scopeJobs(jobs: Jobs, principal: Principal, streams: StreamQuota): ScopedJobs {
  const isAdmin = principal.role === 'admin';
  // A user's filter is forced to its own jobs: the one rule for listing and watching.
  const scoped = <F extends { readonly owner?: string }>(filter: F = {} as F): F =>
    isAdmin ? filter : { ...filter, owner: principal.name };
  const visible = (id: string): JobStatus => {
    let job: JobStatus;
    try {
      job = jobs.get(id);
    } catch (err) {
      throw sameNotFound(id, err);
    }
    if (!isAdmin && job.owner !== principal.name) throw jobNotFound(id, true);
    return job;
  };
  return {
    principal,
    start(spec, signal, names) {
      if (spec.hostNetwork && !isAdmin) {
        return Promise.reject(
          new JobworkerError(
            ErrorCode.PermissionDenied,
            `host_network requires role admin; ${principal.name} has role ${principal.role}`,
          ),
        );
      }
      return jobs.start(principal.name, spec, signal, names);
    },
    async stop(id, options) {
      visible(id);
      try {
        return await jobs.stop(id, principal.name, options);
      } catch (err) {
        throw sameNotFound(id, err);
      }
    },
    signal(id, signal, all) {
      visible(id);
      try {
        return jobs.signal(id, signal, all);
      } catch (err) {
        throw sameNotFound(id, err);
      }
    },
    async wait(id, signal) {
      visible(id);
      // A wait is a long call like a follower: it counts in the same quota.
      const release = streams.acquire(principal.name);
      try {
        return await jobs.wait(id, signal);
      } catch (err) {
        throw sameNotFound(id, err);
      } finally {
        release();
      }
    },
    async delete(id, options) {
      visible(id);
      try {
        await jobs.delete(id, principal.name, options);
      } catch (err) {
        throw sameNotFound(id, err);
      }
    },
    attach(id, options) {
      visible(id);
      try {
        return jobs.attach(id, options);
      } catch (err) {
        throw sameNotFound(id, err);
      }
    },
    get: visible,
    list(filter) {
      return jobs.list(scoped(filter));
    },
    count(filter) {
      return jobs.count(scoped(filter));
    },
    watch(options) {
      const source = jobs.watch({ ...options, filter: scoped(options.filter) });
      return {
        async *[Symbol.asyncIterator](): AsyncGenerator<WatchEvent> {
          // As for output streams: a watch holds a slot of the caller's stream quota while read.
          const release = streams.acquire(principal.name);
          try {
            yield* source;
          } finally {
            release();
          }
        },
      };
    },
    output(id, options) {
      visible(id);
      let source: AsyncIterable<OutputEvent>;
      try {
        source = jobs.output(id, options);
      } catch (err) {
        throw sameNotFound(id, err);
      }
      return {
        async *[Symbol.asyncIterator]() {
          // Taken when reading starts and given back however it ends, so a
          // stream that is never read holds no slot. A cancelled stream gives
          // it back at the cancel, not once the reader has unwound: the client
          // may already be opening its next stream.
          const release = streams.acquire(principal.name);
          const unlisten = onAbort(options.signal, release);
          try {
            yield* source;
          } catch (err) {
            throw sameNotFound(id, err);
          } finally {
            unlisten();
            release();
          }
        },
      };
    },
  };
}
