/** Chunk size of the baseline server: the job log reader's read buffer (READ_BUFFER_BYTES of src/job/log-reader.ts). */
export { READ_BUFFER_BYTES as BASELINE_CHUNK_BYTES } from '../../src/job/log-reader.js';
