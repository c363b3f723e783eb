/**
 * The ONE place that says which Isolation implementations the job library's
 * and the API's tests run against: the real one (native helper, namespaces,
 * cgroups) when running as root, as CI does; otherwise the plain test-only
 * isolation, so that the output-log and lifecycle logic can still be
 * exercised without root. Under CI=true a non-root run fails instead
 * (guards.ts), so CI always tests the real thing.
 */
import { randomBytes } from 'node:crypto';
import type { Isolation } from '../../src/isolation/index.js';
import { requiresRoot } from './guards.js';
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
    // A cgroup group of its own per isolation: a manager's start-up sweep
    // removes every job cgroup of its group, and tests run in parallel.
    const group = `jobworker-test-${randomBytes(6).toString('hex')}`;
    return createIsolation({ stateDir, cgroupGroup: group });
  },
};

/** The implementations to test the job library against. */
export const isolationFactories: readonly IsolationFactory[] =
  requiresRoot() === false ? [real] : [plain];

/** The first real isolation, if any is registered. */
export function realIsolationFactory(): IsolationFactory | undefined {
  return isolationFactories.find((f) => f.real);
}
