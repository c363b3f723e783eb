// ESLint flat config. typescript-eslint's strictTypeChecked rules use the type
// checker against the commonest bugs in process and stream code (floating and
// misused promises, non-exhaustive switches, throwing non-Errors). Each extra
// rule below says why it is here.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

/** Layers import downwards only: cli -> api -> job -> isolation (-> native helper binary). */
const layers = ['cli', 'api', 'job', 'isolation'];

/**
 * Restrictions for files of one layer: no import of a higher layer, and a
 * lower layer only through its public index.
 */
function layerRules(layer) {
  const higher = layers.slice(0, layers.indexOf(layer));
  const lower = layers.slice(layers.indexOf(layer) + 1);
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: shellPaths,
          patterns: [
            ...higher.map((h) => ({
              regex: `(^|/)${h}/`,
              message: `src/${layer} must not import src/${h}: imports flow cli -> api -> job -> isolation.`,
            })),
            ...lower.map((l) => ({
              regex: `\\.\\./${l}/(?!index\\.js$)`,
              message: `Import src/${l} only through its public entry, ../${l}/index.js.`,
            })),
          ],
        },
      ],
    },
  };
}

/** exec/execSync run a shell: argv injection. Jobs and tools are spawned without one. */
const shellPaths = ['child_process', 'node:child_process'].map((name) => ({
  name,
  importNames: ['exec', 'execSync'],
  message: 'exec/execSync run /bin/sh; use spawn/execFile with an argv array.',
}));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'src/gen/', 'native/build/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-restricted-imports': ['error', { paths: shellPaths }],
      // Only the two program entry points decide the process exit code;
      // library code that exits skips cleanup (cgroups, child processes).
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'exit',
          message: 'Only src/cli/main.ts and src/api/main.ts may exit.',
        },
      ],
      // Template literals with numbers are fine; with objects they print [object Object].
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      // Unused args named _x document a required signature.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  ...layers.map(layerRules),
  {
    // src/*.ts (errors, dev paths) sit below every layer, and jobctl loads
    // them before it knows whether it will dial: grpc-js is most of its
    // start-up time (src/errors.test.ts checks what importing them loads).
    files: ['src/*.ts'],
    ignores: ['src/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...shellPaths,
            {
              name: '@grpc/grpc-js',
              message: 'src/*.ts must not load grpc-js; use numeric statuses.',
            },
          ],
          patterns: layers.map((layer) => ({
            regex: `^\\./${layer}/`,
            message: `src/*.ts sit below every layer and must not import src/${layer}.`,
          })),
        },
      ],
    },
  },
  {
    files: ['src/cli/main.ts', 'src/api/main.ts', 'bench/**/*.ts', 'tests/helpers/**/*.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly' },
    },
  },
  {
    // The install-time build script reports a failed build through its exit code.
    files: ['scripts/**/*.mjs'],
    rules: { 'no-restricted-properties': 'off' },
  },
  prettier,
);
