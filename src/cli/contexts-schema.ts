/**
 * The schema of jobctl's contexts file (contexts.ts), apart so that zod and
 * smol-toml load only when there is a file to check. Every refusal names the
 * file, the key (as a TOML dotted key) and the reason.
 */
import { parse, TomlError } from 'smol-toml';
import * as z from 'zod';
import type { ConfigData } from './contexts.js';
import { contextNameRule, MAX_CONTEXTS, settingRules } from './contexts.js';
import { ConfigError } from './failures.js';

/** A string for which `problem` finds nothing wrong. */
function checked(problem: (value: string) => string | null) {
  return z.string().superRefine((value, ctx) => {
    const issue = problem(value);
    if (issue !== null)
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} ${issue}` });
  });
}

const path = z.string().min(1, 'is empty');

const contextSchema = z
  .strictObject({
    server: checked(settingRules.serverProblem),
    'tls-server-name': z.string().min(1, 'is empty').optional(),
    certs: path.optional(),
    user: checked(settingRules.userProblem).optional(),
    cert: path.optional(),
    key: path.optional(),
    ca: path.optional(),
    labels: z.record(z.string(), z.string()).optional(),
  })
  .superRefine((context, ctx) => {
    // Half a pair would silently take the other half from the certificate directory.
    if ((context.cert === undefined) !== (context.key === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [context.cert === undefined ? 'cert' : 'key'],
        message: `is missing: cert and key go together`,
      });
    }
  });

const configSchema = z
  .strictObject({
    'current-context': z.string().optional(),
    contexts: z
      .record(z.string().regex(contextNameRule.pattern, contextNameRule.message), contextSchema)
      .default({})
      .refine((contexts) => Object.keys(contexts).length <= MAX_CONTEXTS, {
        error: `has more than ${MAX_CONTEXTS} contexts`,
      }),
  })
  .superRefine((config, ctx) => {
    const current = config['current-context'];
    if (current !== undefined && !Object.hasOwn(config.contexts, current)) {
      ctx.addIssue({
        code: 'custom',
        path: ['current-context'],
        message: `names ${JSON.stringify(current)}, which is not a context of the file`,
      });
    }
  });

/** Parses and checks the text of the contexts file at `file`. */
export async function parseConfig(file: string, text: string): Promise<ConfigData> {
  let toml: unknown;
  try {
    toml = parse(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = err.message.split('\n')[0] ?? 'not TOML';
    throw new ConfigError(`${file}:${err.line}:${err.column}: ${reason}`, { cause: err });
  }
  const result = configSchema.safeParse(toml);
  if (!result.success) {
    const problems = result.error.issues.map(describeIssue);
    const shown = problems.slice(0, 3).join('; ');
    const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : '';
    throw new ConfigError(`${file}: ${shown}${more}`, { cause: result.error });
  }
  const data = result.data;
  await checkLabels(file, data);
  return data;
}

/** The labels follow the job labels' rules, so that kubectl's selectors mean the same on both. */
async function checkLabels(file: string, data: ConfigData): Promise<void> {
  const labelled = Object.entries(data.contexts).filter(([, c]) => c.labels !== undefined);
  if (labelled.length === 0) return;
  // The job library is loaded only for a file with labels (start-up time).
  const { checkLabels: check } = await import('../job/index.js');
  for (const [name, context] of labelled) {
    try {
      check(context.labels ?? {}, dotted(['contexts', name, 'labels']));
    } catch (err) {
      throw new ConfigError(`${file}: ${(err as Error).message}`, { cause: err });
    }
  }
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const at = issue.path.map(String);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => `${dotted([...at, key])}: unknown key`).join('; ');
    case 'invalid_key':
      return `${dotted(at)}: ${issue.issues[0]?.message ?? issue.message}`;
    default:
      return `${at.length === 0 ? 'the file' : dotted(at)}: ${issue.message}`;
  }
}

/** A key path as TOML spells it: bare keys as they are, others quoted. */
function dotted(keys: readonly string[]): string {
  return keys.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k))).join('.');
}
