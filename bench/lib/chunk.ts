/** Chunk size of the baseline server: the job log reader's read buffer (READ_BUFFER_BYTES of src/job/log-reader.ts). */
export const BASELINE_CHUNK_BYTES = 64 * 1024;
