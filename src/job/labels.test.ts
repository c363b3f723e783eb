import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkJobName,
  checkLabels,
  MAX_LABELS,
  matchesSelector,
  parseSelector,
  type Labels,
} from './labels.js';

test('job names: DNS labels that are not job ids', () => {
  for (const good of ['a', 'nightly-db', '0day', 'x'.repeat(63), ''])
    assert.doesNotThrow(() => {
      checkJobName(good);
    });
  for (const [bad, why] of [
    ['x'.repeat(64), /longer than 63/],
    ['Web', /not a DNS label/],
    ['-a', /not a DNS label/],
    ['a-', /not a DNS label/],
    ['a_b', /not a DNS label/],
    ['a.b', /not a DNS label/],
    ['aaaaaaaaaaaaaaaaaaaaaaaaaa', /form of a job id/],
  ] as const) {
    assert.throws(
      () => {
        checkJobName(bad, 'metadata.name');
      },
      new RegExp(`^JobworkerError: metadata.name "${bad.slice(0, 20)}.*${why.source}`),
    );
  }
});

test('labels: Kubernetes key and value rules, a count limit, the label named', () => {
  assert.doesNotThrow(() => {
    checkLabels({
      team: 'db',
      'example.com/tier': 'Back_end.1',
      empty: '',
      [`k${'x'.repeat(62)}`]: 'v',
    });
  });
  const cases: [Labels, RegExp][] = [
    [
      { [`k${'x'.repeat(63)}`]: 'v' },
      /^JobworkerError: labels key "kx+" has a name longer than 63/,
    ],
    [{ team: 'v'.repeat(64) }, /^JobworkerError: labels\["team"\] value "v+" is longer than 63/],
    [{ team: '-db' }, /^JobworkerError: labels\["team"\] value "-db" is not of/],
    [{ 'a/b/c': 'v' }, /key "a\/b\/c" has a name not of/],
    [{ 'Example.com/x': 'v' }, /key "Example.com\/x" has a prefix that is not a DNS subdomain/],
    [{ [`${'p'.repeat(254)}/x`]: 'v' }, /has a prefix longer than 253/],
    [{ '/x': 'v' }, /prefix that is not a DNS subdomain/],
    [{ 'a/': 'v' }, /key "a\/" has an empty name/],
    [{ '': 'v' }, /key "" has an empty name/],
    [
      Object.fromEntries(Array.from({ length: MAX_LABELS + 1 }, (_, i) => [`k${i}`, 'v'])),
      /labels has 65 labels, more than 64/,
    ],
  ];
  for (const [labels, message] of cases) {
    assert.throws(() => {
      checkLabels(labels);
    }, message);
  }
});

test('selectors: the kubectl subset parses and matches as Kubernetes does', () => {
  const selector = parseSelector('team=db, env!=prod,tier in (a, b),zone notin (x),has,!gone,v==');
  assert.deepEqual(selector, [
    { op: 'in', key: 'team', values: ['db'] },
    { op: 'notin', key: 'env', values: ['prod'] },
    { op: 'in', key: 'tier', values: ['a', 'b'] },
    { op: 'notin', key: 'zone', values: ['x'] },
    { op: 'exists', key: 'has' },
    { op: '!exists', key: 'gone' },
    { op: 'in', key: 'v', values: [''] },
  ]);
  const base = { team: 'db', tier: 'a', has: '', v: '' };
  assert.equal(matchesSelector(base, selector), true);
  // A job without the key passes != and notin, as in Kubernetes.
  assert.equal(matchesSelector({ ...base, env: 'dev' }, selector), true);
  for (const change of [{ env: 'prod' }, { tier: 'c' }, { zone: 'x' }, { gone: '1' }, { v: 'x' }]) {
    assert.equal(matchesSelector({ ...base, ...change }, selector), false, JSON.stringify(change));
  }
  assert.equal(matchesSelector({ ...base, team: 'web' }, selector), false);
  assert.deepEqual(parseSelector(''), []);
  assert.equal(matchesSelector({}, []), true);
});

test('selectors that do not parse are refused naming the selector', () => {
  for (const [bad, message] of [
    ['team in (db', /does not parse: expected "," or "\)", found the end/],
    ['team in db', /does not parse: expected "\(", found "db"/],
    ['team=db,', /does not parse: expected a key, found the end/],
    ['=db', /does not parse: expected a key, found "="/],
    ['team=db env=x', /does not parse: expected ",", found "env"/],
    ['team=d b', /does not parse: expected ",", found "b"/],
    ['team>1', /key "team>1" has a name not of/],
    ['Team_=x', /key "Team_" has a name not of/],
    ['team=-x', /value "-x" is not of/],
    ['x'.repeat(4097), /longer than 4096 characters/],
  ] as const) {
    assert.throws(
      () => parseSelector(bad),
      new RegExp(`^JobworkerError: label_selector .*${message.source}`),
      bad,
    );
  }
});
