/**
 * Per-key budgets: for each key (an owner, an identity), how much of each
 * bounded quantity it holds, taken and given back as one reservation. The
 * job layer bounds each owner's running jobs and the sums of their limits;
 * the API bounds each identity's open output streams. Checking and taking
 * happen in one synchronous call, so that two concurrent starts cannot both
 * pass a check that only one of them fits.
 */
import { ErrorCode, JobworkerError } from '../errors.js';

/** One bounded quantity. */
export interface BudgetRule {
  /** The budget's name in messages, as the operator sets it (`max_running_jobs_per_owner`). */
  readonly name: string;
  /** Most a key may hold; 0 means unbounded. */
  readonly max: number;
  /** What is counted, after the numbers (`running jobs`, `bytes of memory limits`). */
  readonly noun: string;
}

/** Gives a reservation back; idempotent. */
export type Release = () => void;

/** The held amounts of every key, bounded by the rules. */
export class Budget<K extends string> {
  readonly #who: string;
  readonly #rules: Readonly<Record<K, BudgetRule>>;
  readonly #keys: readonly K[];
  /** Only keys that hold something: the table is as large as the reservations. */
  readonly #held = new Map<string, Record<K, number>>();

  /** `who` names a key in messages (`owner`, `identity`). */
  constructor(who: string, rules: Readonly<Record<K, BudgetRule>>) {
    this.#who = who;
    this.#rules = rules;
    this.#keys = Object.keys(rules) as K[];
  }

  /**
   * Takes `amounts` for `key`, or throws resource_exhausted naming the first
   * rule it would break, the key's current holding and the rule's maximum.
   */
  reserve(key: string, amounts: Readonly<Record<K, number>>): Release {
    const held = this.held(key);
    for (const k of this.#keys) {
      const { name, max, noun } = this.#rules[k];
      if (max === 0 || held[k] + amounts[k] <= max) continue;
      const asks = amounts[k] === 1 ? '' : `, and this asks for ${amounts[k]} more`;
      throw new JobworkerError(
        ErrorCode.ResourceExhausted,
        `${this.#who} ${JSON.stringify(key)} has ${held[k]} of ${max} ${noun}${asks} (${name})`,
      );
    }
    this.#held.set(key, this.#sum(held, amounts, 1));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.#sum(this.held(key), amounts, -1);
      if (this.#keys.every((k) => left[k] === 0)) this.#held.delete(key);
      else this.#held.set(key, left);
    };
  }

  /** What `key` holds now (zeros when nothing). */
  held(key: string): Readonly<Record<K, number>> {
    return this.#held.get(key) ?? this.#sum({}, {}, 0);
  }

  #sum(
    a: Partial<Record<K, number>>,
    b: Partial<Record<K, number>>,
    sign: 1 | -1 | 0,
  ): Record<K, number> {
    const out = {} as Record<K, number>;
    for (const k of this.#keys) out[k] = (a[k] ?? 0) + sign * (b[k] ?? 0);
    return out;
  }
}
