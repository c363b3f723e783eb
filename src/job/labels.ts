/**
 * Job names, labels and label selectors, with Kubernetes' rules: a name is a
 * DNS label (RFC 1123), a label key an optional DNS subdomain prefix and a
 * "name" segment, a label value empty or such a segment; selectors are the
 * equality- and set-based subset kubectl accepts
 * (k8s.io/apimachinery/pkg/labels/selector.go, pkg/util/validation). Every
 * refusal is `invalid_argument` naming the name, label or selector.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { isValidJobId } from './ids.js';
import { quote } from './spec.js';

/** A job's labels: key -> value. */
export type Labels = Readonly<Record<string, string>>;

/** Most labels on one job. Kubernetes sets none; this bounds a record and a listing's work. */
export const MAX_LABELS = 64;
/** Longest job name and label name segment or value (DNS label; Kubernetes' qualified name). */
export const MAX_NAME_LENGTH = 63;
/** Longest label key prefix (DNS subdomain). */
export const MAX_PREFIX_LENGTH = 253;
/** Longest label selector, in characters. */
export const MAX_SELECTOR_LENGTH = 4096;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function invalid(message: string): JobworkerError {
  return new JobworkerError(ErrorCode.InvalidArgument, message);
}

/** Why `name` is not a job name, or null when it is one. */
function nameProblem(name: string): string | null {
  if (name.length > MAX_NAME_LENGTH) return `is longer than ${MAX_NAME_LENGTH} characters`;
  if (!DNS_LABEL.test(name))
    return 'is not a DNS label (a-z, 0-9 and "-", starting and ending with a letter or digit)';
  // Either could then stand for the other wherever a job id is taken.
  if (isValidJobId(name)) return 'has the form of a job id';
  return null;
}

/** Whether `name` is a valid job name. */
export function isValidJobName(name: string): boolean {
  return nameProblem(name) === null;
}

/** Checks a job name ("" = none); `field` names it in the message. */
export function checkJobName(name: string, field = 'name'): void {
  if (name === '') return;
  const problem = nameProblem(name);
  if (problem !== null) throw invalid(`${field} ${quote(name)} ${problem}`);
}

function keyProblem(key: string): string | null {
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? null : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== null) {
    if (prefix.length > MAX_PREFIX_LENGTH)
      return `has a prefix longer than ${MAX_PREFIX_LENGTH} characters`;
    if (!DNS_SUBDOMAIN.test(prefix)) return 'has a prefix that is not a DNS subdomain';
  }
  if (name.length === 0) return 'has an empty name';
  if (name.length > MAX_NAME_LENGTH) return `has a name longer than ${MAX_NAME_LENGTH} characters`;
  if (!QUALIFIED_NAME.test(name))
    return 'has a name not of A-Z, a-z, 0-9, "-", "_", "." starting and ending with a letter or digit';
  return null;
}

function valueProblem(value: string): string | null {
  if (value.length > MAX_NAME_LENGTH) return `is longer than ${MAX_NAME_LENGTH} characters`;
  if (value !== '' && !QUALIFIED_NAME.test(value))
    return 'is not of A-Z, a-z, 0-9, "-", "_", "." starting and ending with a letter or digit';
  return null;
}

/** Checks a job's labels; `field` names them in messages (`labels["team"]`). */
export function checkLabels(labels: Labels, field = 'labels'): void {
  const keys = Object.keys(labels);
  if (keys.length > MAX_LABELS)
    throw invalid(`${field} has ${keys.length} labels, more than ${MAX_LABELS}`);
  for (const key of keys) {
    const keyIssue = keyProblem(key);
    if (keyIssue !== null) throw invalid(`${field} key ${quote(key)} ${keyIssue}`);
    const value = labels[key] ?? '';
    const valueIssue = valueProblem(value);
    if (valueIssue !== null)
      throw invalid(`${field}[${quote(key)}] value ${quote(value)} ${valueIssue}`);
  }
}

/** One requirement of a selector. */
export type Requirement =
  | { readonly op: 'in' | 'notin'; readonly key: string; readonly values: readonly string[] }
  | { readonly op: 'exists' | '!exists'; readonly key: string };

/** A parsed label selector: every requirement must hold. Empty: everything matches. */
export type LabelSelector = readonly Requirement[];

/** Whether `labels` satisfy every requirement of `selector`. */
export function matchesSelector(labels: Labels, selector: LabelSelector): boolean {
  return selector.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    switch (r.op) {
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case 'in':
        return has && r.values.includes(labels[r.key] ?? '');
      case 'notin':
        // As in Kubernetes: a job without the key matches "key notin (...)" and "key!=v".
        return !has || !r.values.includes(labels[r.key] ?? '');
    }
  });
}

/** Tokens of kubectl's selector syntax. */
const TOKEN = /\s*(!=|==|=|!|\(|\)|,|[^\s!=(),]+)/y;

/**
 * Parses a selector in kubectl's syntax: `a=b,c!=d,e in (f,g),h notin (i),j,!k`
 * (`==` as `=`). "" selects everything. `field` names it in the message.
 */
export function parseSelector(text: string, field = 'label_selector'): LabelSelector {
  if (text.length > MAX_SELECTOR_LENGTH)
    throw invalid(`${field} is longer than ${MAX_SELECTOR_LENGTH} characters`);
  const tokens: string[] = [];
  // A failed sticky match resets lastIndex: the end of the last token is kept apart.
  let end = 0;
  TOKEN.lastIndex = 0;
  let match: RegExpExecArray | null;
  while ((match = TOKEN.exec(text)) !== null) {
    tokens.push(match[1] ?? '');
    end = TOKEN.lastIndex;
  }
  if (text.slice(end).trim() !== '') throw invalid(`${field} ${quote(text)} does not parse`);
  let at = 0;
  const fail = (expected: string): never => {
    const found = tokens[at];
    throw invalid(
      `${field} ${quote(text)} does not parse: expected ${expected}, found ${found === undefined ? 'the end' : quote(found)}`,
    );
  };
  const word = (what: 'key' | 'value'): string => {
    const token = tokens[at];
    // An empty value: `env=`, `env in (a,)`.
    if (what === 'value' && (token === undefined || token === ',' || token === ')')) return '';
    if (token === undefined || /^(!=|==|=|!|\(|\)|,)$/.test(token)) return fail(`a ${what}`);
    const problem = what === 'key' ? keyProblem(token) : valueProblem(token);
    if (problem !== null) throw invalid(`${field} ${what} ${quote(token)} ${problem}`);
    at++;
    return token;
  };
  const requirements: Requirement[] = [];
  if (tokens.length === 0) return requirements;
  for (;;) {
    if (tokens[at] === '!') {
      at++;
      requirements.push({ op: '!exists', key: word('key') });
    } else {
      const key = word('key');
      const op = tokens[at];
      if (op === '=' || op === '==' || op === '!=') {
        at++;
        requirements.push({ op: op === '!=' ? 'notin' : 'in', key, values: [word('value')] });
      } else if (op === 'in' || op === 'notin') {
        at++;
        if (tokens[at] !== '(') fail('"("');
        at++;
        const values = [word('value')];
        while (tokens[at] === ',') {
          at++;
          values.push(word('value'));
        }
        if (tokens[at] !== ')') fail('"," or ")"');
        at++;
        requirements.push({ op, key, values });
      } else {
        requirements.push({ op: 'exists', key });
      }
    }
    if (at === tokens.length) return requirements;
    if (tokens[at] !== ',') fail('","');
    at++;
  }
}
