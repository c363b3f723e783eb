/**
 * The audit log: one JSON line per call, allowed or denied, written with
 * pino to `<state-dir>/audit.log` (mode 0600, rotated: rotating-file.ts) and
 * optionally to stdout.
 * Destinations are synchronous (no worker thread, nothing lost on exit);
 * an audit line is small and calls are few compared with the cost of a write.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import { RotatingFile } from './rotating-file.js';

/** How a call ended, for the audit log. */
export type AuditOutcome = 'ok' | 'denied' | 'error' | 'cancelled';

/** One audited call. */
export interface AuditRecord {
  /** Certificate CN, when the caller got that far. */
  readonly identity: string | null;
  readonly role: string | null;
  /** Full gRPC method path, e.g. /jobworker.v1.JobService/GetJob. */
  readonly method: string;
  readonly jobId: string | null;
  readonly outcome: AuditOutcome;
  /** The jobworker error code, when the call failed. */
  readonly code: ErrorCode | null;
  /** Remote address of the connection. */
  readonly peer: string;
  /** Why a call or connection was refused before the seam (a TLS handshake, an unknown method). */
  readonly reason?: string;
  /** What an Attach call did (never the bytes themselves: passwords are typed at prompts). */
  readonly attachment?: AttachmentAudit;
}

/** The audit facts of one attachment. */
export interface AttachmentAudit {
  /** Whether it held the writer seat. */
  readonly writer: boolean;
  /** From the attach to its end, in ms. */
  readonly durationMs: number;
  /** Stdin bytes handed to the job. */
  readonly stdinBytes: number;
}

/** The `method` of the audit line of a refused TLS handshake or client certificate. */
export const TLS_HANDSHAKE = 'tls-handshake';

/**
 * Writes `entry`; a failing destination is logged, never thrown (the callers
 * are grpc-js handlers and socket events).
 */
export function recordSafely(audit: AuditLog, log: Logger, entry: AuditRecord): void {
  try {
    audit.record(entry);
  } catch (err) {
    // TODO(audit policy): decide whether calls should be refused while the audit log cannot be written.
    log.error({ err, method: entry.method, identity: entry.identity }, 'audit log write failed');
  }
}

/** Where audit records go. */
export interface AuditLog {
  record(entry: AuditRecord): void;
  /** Flushes and closes the destinations. */
  close(): void;
}

/** Rotation of `audit.log`: 64 MiB files, four old ones kept. TODO(configuration system). */
export const AUDIT_ROTATION = { maxBytes: 64 * 1024 * 1024, keep: 4 } as const;
/**
 * The most disk the audit log takes: reserved from the state directory's
 * disk budget, whose rest the job library's retention keeps for output.
 */
export const AUDIT_FOOTPRINT_BYTES = RotatingFile.footprint(AUDIT_ROTATION);

/** Options of {@link openAuditLog}. */
export interface AuditLogOptions {
  /** Also write each line to stdout. */
  readonly stdout?: boolean;
  /** Size of a file and files kept; {@link AUDIT_ROTATION} by default. */
  readonly rotation?: { readonly maxBytes: number; readonly keep: number };
}

/** Opens the audit log at `path` (created 0600; appended to, rotated), also to stdout when asked. */
export function openAuditLog(path: string, options: AuditLogOptions = {}): AuditLog {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const file = new RotatingFile(path, { ...(options.rotation ?? AUDIT_ROTATION), mode: 0o600 });
  const streams: { stream: DestinationStream }[] = [{ stream: file }];
  if (options.stdout === true) streams.push({ stream: pino.destination({ dest: 1, sync: true }) });
  const logger: Logger = pino(
    { base: null, messageKey: 'msg', timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream(streams),
  );
  return {
    record(entry) {
      logger.info({ ...entry }, 'call');
    },
    close() {
      file.close();
    },
  };
}
