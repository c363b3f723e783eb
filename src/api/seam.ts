/**
 * The one seam every call passes through. {@link bindService} turns a table
 * of handlers into a grpc-js service implementation; for each method of the
 * service definition it
 *
 * 1. refuses calls while the server shuts down (UNAVAILABLE);
 * 2. reads the verified peer certificate once and derives the principal
 *    (UNAUTHENTICATED / PERMISSION_DENIED "unknown role");
 * 3. checks the caller's role against the handler's `roles` (deny by
 *    default: an empty list admits nobody);
 * 4. validates a `jobId` field, if the request has one, before anything else,
 *    and resolves a job name in it to the id of the caller's newest job of
 *    that name (names are per owner, so an admin's names are its own too):
 *    handlers, and so the authorization in `ctx.jobs`, only ever see ids;
 * 5. runs the handler with a {@link HandlerContext}: the principal, the job
 *    library scoped to it, and an AbortSignal that aborts when the client
 *    cancels, the deadline passes, the server shuts down or the connection
 *    must close (connection.ts);
 * 6. maps any error to one gRPC status (status-map.ts) and writes one audit line;
 *    an internal error is logged under an id, and the client gets only the id.
 *
 * The handler table's type is derived from the service definition, so a
 * method added to the proto without a handler does not compile, and
 * `bindService` also refuses at start-up a definition method with no handler.
 */
import { status as Status, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ErrorCode, JobworkerError, toJobworkerError } from '../errors.js';
import type { Jobs } from '../job/index.js';
import { recordSafely, type AttachmentAudit, type AuditLog, type AuditOutcome } from './audit.js';
import {
  isHiddenJob,
  jobNotFound,
  principalOf,
  scopeJobs,
  type Principal,
  type Role,
  type ScopedJobs,
} from './authz.js';
import type { StreamQuota } from './quota.js';
import { toStatus } from './status-map.js';
import { checkJobRef, type JobRef } from './validate.js';
import { Undecodable } from './decode.js';
import {
  callSignal,
  requests,
  sender,
  type AnyCall,
  type CallTracker,
  type Definition,
} from './call.js';

/** What every handler gets besides its request. */
export interface HandlerContext {
  readonly principal: Principal;
  /** The job library as this caller may use it. */
  readonly jobs: ScopedJobs;
  /** Aborted (reason: a JobworkerError) on client cancel, deadline or server shutdown. */
  readonly signal: AbortSignal;
  /** Records the id of a job the call created, for the audit line (requests with a job_id are recorded by the seam). */
  noteJob(id: string): void;
  /**
   * For a job_id that arrives in a stream's message rather than the call's
   * request: validates it, resolves a name as the seam does (step 4) and
   * records the id for the audit line.
   */
  resolveJob(value: unknown): string;
  /** Adds what an attachment did to the call's audit line. */
  noteAttachment(detail: AttachmentAudit): void;
}

/** A bidirectional method's handler: reads `requests` at its own pace (backpressure), sends with `send`. */
export interface BidiHandler<Req, Res> {
  readonly roles: readonly Role[];
  handle(
    requests: AsyncIterable<Req>,
    ctx: HandlerContext,
    send: (message: Res) => Promise<void>,
  ): Promise<void>;
}

/** A unary method's handler. */
export interface UnaryHandler<Req, Res> {
  /** Roles allowed to call the method at all; ownership is enforced by `ctx.jobs`. */
  readonly roles: readonly Role[];
  handle(request: Req, ctx: HandlerContext): Promise<Res>;
}

/** A server-streaming method's handler; `send` resolves once the message may be followed by another (backpressure). */
export interface StreamHandler<Req, Res> {
  readonly roles: readonly Role[];
  handle(request: Req, ctx: HandlerContext, send: (message: Res) => Promise<void>): Promise<void>;
}

type RequestOf<M extends Definition[string]> = ReturnType<M['requestDeserialize']>;
type ResponseOf<M extends Definition[string]> = Parameters<M['responseSerialize']>[0];

/** One handler per method of `D`, of the right kind and message types. */
export type Handlers<D extends Definition> = {
  readonly [K in keyof D]: D[K]['requestStream'] extends true
    ? BidiHandler<RequestOf<D[K]>, ResponseOf<D[K]>>
    : D[K]['responseStream'] extends true
      ? StreamHandler<RequestOf<D[K]>, ResponseOf<D[K]>>
      : UnaryHandler<RequestOf<D[K]>, ResponseOf<D[K]>>;
};

/** What the seam needs from the server. */
export interface SeamDeps {
  readonly jobs: Jobs;
  readonly audit: AuditLog;
  readonly log: Logger;
  /** Aborted when the server starts shutting down; its reason ends every open call. */
  readonly shutdown: AbortSignal;
  /** Counts calls inside the seam (for leak checks and shutdown diagnostics). */
  readonly calls: CallTracker;
  /** Bounds each identity's open output streams. */
  readonly streams: StreamQuota;
  /** The signal that ends the calls of the connection `peer` (a drain's end, a dropped connection). */
  readonly connectionSignal: (peer: string) => AbortSignal | undefined;
  /** Told of each call's end: its method path, the status it ended with, how long it took (metrics). */
  readonly observe?: (method: string, code: Status, seconds: number) => void;
}

function outcomeOf(err: JobworkerError): AuditOutcome {
  if (
    err.code === ErrorCode.PermissionDenied ||
    err.code === ErrorCode.Unauthenticated ||
    isHiddenJob(err)
  ) {
    return 'denied';
  }
  if (err.code === ErrorCode.Cancelled || err.code === ErrorCode.DeadlineExceeded)
    return 'cancelled';
  return 'error';
}

/** The id `ref` stands for: a name is looked up among `owner`'s own jobs only. */
function resolveJobRef(jobs: Jobs, owner: string, ref: JobRef): string {
  if ('id' in ref) return ref.id;
  try {
    return jobs.idOfName(owner, ref.name);
  } catch (err) {
    throw err instanceof JobworkerError && err.code === ErrorCode.NotFound
      ? jobNotFound(ref.name)
      : err;
  }
}

/** Runs one call through the checks; `body` does the handler's work (on the request, its job name resolved) and sends the response. */
async function runCall(
  deps: SeamDeps,
  path: string,
  roles: readonly Role[],
  call: AnyCall,
  body: (ctx: HandlerContext, request: unknown) => Promise<void>,
  fail: (status: ReturnType<typeof toStatus>) => void,
): Promise<void> {
  const begun = process.hrtime.bigint();
  let code = Status.OK;
  let principal: Principal | null = null;
  let jobId: string | null = null;
  let attachment: AttachmentAudit | undefined;
  const { signal, dispose } = callSignal(
    call,
    deps.shutdown,
    deps.connectionSignal(call.getPeer()),
  );
  deps.calls.enter();
  try {
    if (deps.shutdown.aborted) throw deps.shutdown.reason;
    // Built anew by grpc-js on each access: read once.
    const cert = call.getAuthContext().sslPeerCertificate;
    principal = principalOf(cert);
    if (!roles.includes(principal.role)) {
      throw new JobworkerError(
        ErrorCode.PermissionDenied,
        `${path} is not allowed for role ${principal.role}`,
      );
    }
    // A bidirectional call has no request: its messages are the handler's to read.
    let request: unknown = 'request' in call ? call.request : undefined;
    if (request instanceof Undecodable)
      throw new JobworkerError(ErrorCode.InvalidArgument, request.message);
    if (typeof request === 'object' && request !== null && 'jobId' in request) {
      jobId = resolveJobRef(deps.jobs, principal.name, checkJobRef(request.jobId));
      request = { ...request, jobId };
    }
    const caller = principal;
    await body(
      {
        principal,
        jobs: scopeJobs(deps.jobs, principal, deps.streams),
        signal,
        noteJob: (id) => {
          jobId = id;
        },
        resolveJob: (value) => {
          jobId = resolveJobRef(deps.jobs, caller.name, checkJobRef(value));
          return jobId;
        },
        noteAttachment: (detail) => {
          attachment = detail;
        },
      },
      request,
    );
    record(deps, call, path, principal, jobId, 'ok', null, attachment);
  } catch (caught) {
    // An aborted call fails with the abort's reason, whatever the library threw on the way out.
    const err = toJobworkerError(signal.aborted ? signal.reason : caught);
    record(deps, call, path, principal, jobId, outcomeOf(err), err.code, attachment);
    const sent = err.code === ErrorCode.Internal ? logInternal(deps.log, caught, path) : err;
    const status = toStatus(sent);
    code = status.code;
    // After a client cancel or an expired deadline grpc-js has already ended the call.
    if (!call.cancelled) {
      try {
        fail(status);
      } catch (failure) {
        // The call ended under us (e.g. the stream was destroyed): nothing left to tell the client.
        deps.log.debug({ err: failure, method: path }, 'could not send the error status');
      }
    }
  } finally {
    dispose();
    deps.calls.leave();
    deps.observe?.(path, code, Number(process.hrtime.bigint() - begun) / 1e9);
  }
}

/**
 * Logs an internal error in full under a fresh id and returns what the client
 * gets instead: the id, never the details (they name server paths).
 */
function logInternal(log: Logger, err: unknown, method: string): JobworkerError {
  const errorId = randomBytes(8).toString('hex');
  log.error({ err, method, errorId }, 'internal error');
  return new JobworkerError(
    ErrorCode.Internal,
    `internal error ${errorId}; the server log has its details under this id`,
  );
}

/** Writes the call's audit line. */
function record(
  deps: SeamDeps,
  call: AnyCall,
  method: string,
  principal: Principal | null,
  jobId: string | null,
  outcome: AuditOutcome,
  code: ErrorCode | null,
  attachment?: AttachmentAudit,
): void {
  recordSafely(deps.audit, deps.log, {
    identity: principal?.name ?? null,
    role: principal?.role ?? null,
    method,
    jobId,
    outcome,
    code,
    peer: call.getPeer(),
    ...(attachment === undefined ? {} : { attachment }),
  });
}

/** Builds the grpc-js implementation of `definition` from `handlers`, every method behind the seam. */
export function bindService<D extends Definition>(
  definition: D,
  handlers: Handlers<D>,
  deps: SeamDeps,
): UntypedServiceImplementation {
  const implementation: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const handler = (
      handlers as Record<
        string,
        | UnaryHandler<unknown, unknown>
        | StreamHandler<unknown, unknown>
        | BidiHandler<unknown, unknown>
        | undefined
      >
    )[name];
    if (handler === undefined)
      throw new JobworkerError(ErrorCode.Internal, `no handler for ${method.path}`);
    if (method.requestStream) {
      const bidi = handler as BidiHandler<unknown, unknown>;
      implementation[name] = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        void runCall(
          deps,
          method.path,
          bidi.roles,
          call,
          async (ctx) => {
            await bidi.handle(requests(call, ctx.signal), ctx, sender(call, ctx.signal));
            ctx.signal.throwIfAborted();
            call.end();
          },
          (status) => call.emit('error', status),
        );
      };
    } else if (method.responseStream) {
      const streaming = handler as StreamHandler<unknown, unknown>;
      implementation[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        void runCall(
          deps,
          method.path,
          streaming.roles,
          call,
          async (ctx, request) => {
            await streaming.handle(request, ctx, sender(call, ctx.signal));
            // A handler whose source ended quietly on abort must not report success.
            ctx.signal.throwIfAborted();
            call.end();
          },
          (status) => call.emit('error', status),
        );
      };
    } else {
      const unary = handler as UnaryHandler<unknown, unknown>;
      implementation[name] = (
        call: grpc.ServerUnaryCall<unknown, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        void runCall(
          deps,
          method.path,
          unary.roles,
          call,
          async (ctx, request) => {
            const response = await unary.handle(request, ctx);
            // A response computed after a cancel or deadline is not sent.
            ctx.signal.throwIfAborted();
            callback(null, response);
          },
          (status) => {
            callback(status);
          },
        );
      };
    }
  }
  return implementation;
}
