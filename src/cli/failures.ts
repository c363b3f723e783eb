/**
 * The CLI's own failures, which never reach the server. Everything the server
 * or the transport reports is a JobworkerError (src/errors.ts) instead;
 * exit-codes.ts maps both kinds to exit codes, main.ts prints either as one
 * line.
 */

/** The command line is wrong (unknown flag, bad value, missing argument): exit 64. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * The local setup is wrong (a certificate file is missing, unreadable or not
 * PEM): exit 78, sysexits' EX_CONFIG. The message names the file.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
