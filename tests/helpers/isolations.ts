/**
 * The ONE place that says which Isolation implementations the job library's
 * tests run against. The plain (test-only) isolation always; the real one
 * (native helper, namespaces, cgroups; root only) when
 * JOBWORKER_TEST_REAL_ISOLATION=1. At integration the real one becomes the
 * default here, and every job test then runs against it too.
 */
import type { Isolation } from '../../src/isolation/index.js';
import { PlainIsolation } from './plain-isolation.js';

/** A named way to make an Isolation for a test. */
export interface IsolationFactory {
  readonly name: string;
  /** Whether it really isolates (namespaces, cgroups): tests such as "stop kills a setsid child" need it. */
  readonly real: boolean;
  /** Creates one for a test whose state lives in `stateDir`. */
  create(stateDir: string): Promise<Isolation>;
}

const plain: IsolationFactory = {
  name: 'plain',
  real: false,
  create: () => Promise.resolve(new PlainIsolation()),
};

const real: IsolationFactory = {
  name: 'real',
  real: true,
  // Imported lazily so that plain-isolation tests do not depend on the native helper being built.
  create: async (stateDir) => {
    const { createIsolation } = await import('../../src/isolation/index.js');
    return createIsolation({ stateDir });
  },
};

/** The implementations to test the job library against. TODO(integration): include `real` by default. */
export const isolationFactories: readonly IsolationFactory[] =
  process.env['JOBWORKER_TEST_REAL_ISOLATION'] === '1' ? [plain, real] : [plain];

/** The first real isolation, if any is registered. */
export function realIsolationFactory(): IsolationFactory | undefined {
  return isolationFactories.find((f) => f.real);
}
