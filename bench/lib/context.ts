/** What every scenario gets from bench/run.ts. */
import type { BenchConfig } from './config.js';

/** Shared by the scenarios of one run. */
export interface BenchContext {
  readonly config: BenchConfig;
  /** A PKI made for this run (ca, server, alice, bob, admin), in a temp dir. */
  readonly certsDir: string;
  /** A progress line on stderr (the table goes to stdout). */
  progress(message: string): void;
}
