/**
 * The largest stdin chunk of one Attach message, which both programs need:
 * the server refuses a larger one, jobctl cuts its input to fit. 64 KiB is
 * a pipe's default capacity on Linux: a chunk is at most one pipe-full.
 */
export const MAX_STDIN_CHUNK_BYTES = 64 * 1024;
