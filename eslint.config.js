// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

/** Every folder of src/ the layer rules speak of. */
const ALL_FOLDERS = [
  'utils',
  'log',
  'metrics',
  'download',
  'input',
  'results',
  'engine',
  'queue',
  'run',
  'serve',
  'report',
  'cli',
  'web',
];

/** What the engine and every layer above it may use. */
const BELOW_ENGINE = ['utils', 'log', 'metrics', 'download', 'input', 'results'];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'fixtures/', 'bench/out/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { ignoreRestSiblings: true, argsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'exit',
          message: 'Only the CLI entry decides the exit code.',
        },
      ],
    },
  },
  // The queue talks to Redis on every line: a promise left floating there is
  // an unhandled rejection (a dead worker) the first time Redis answers OOM.
  {
    files: ['src/queue/**'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { checkThenables: true, ignoreVoid: false, ignoreIIFE: false },
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  { files: ['src/web/**'], languageOptions: { globals: globals.browser } },
  // Browser tests: what page.evaluate runs is typed by the DOM library, which
  // this Node program does not load; those values arrive as `any`.
  {
    files: ['test/report-html.test.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    files: ['src/cli/**', 'scripts/**', 'bench/**', 'test/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  // Arrows run one way: cli → run | serve → queue → engine → results, input → download → utils;
  // report reads results; web (the browser page) imports nothing of the server,
  // and no layer of the server or the report imports the page: what both need
  // is in shared. log (the event log) and metrics (Prometheus) sit just above
  // utils: any layer may write events, the commands wire metrics, and neither
  // knows the layers. Each folder lists what it may import.
  ...layerRules({
    'src/log/**': allBut('utils'),
    'src/metrics/**': allBut('utils'),
    'src/utils/**': allBut('utils'),
    'src/download/**': allBut('utils', 'log', 'metrics', 'download'),
    'src/input/**': allBut('utils', 'log', 'metrics', 'input'),
    'src/results/**': allBut('utils', 'log', 'metrics', 'results'),
    'src/engine/**': allBut(...BELOW_ENGINE, 'engine'),
    'src/queue/**': allBut(...BELOW_ENGINE, 'engine', 'queue'),
    'src/run/**': allBut(...BELOW_ENGINE, 'engine', 'queue', 'run'),
    'src/serve/**': allBut(...BELOW_ENGINE, 'engine', 'queue', 'report', 'serve'),
    'src/index.ts': allBut(...BELOW_ENGINE, 'engine', 'queue', 'run', 'report'),
    'src/report/**': allBut('utils', 'log', 'metrics', 'results', 'report'),
    'src/web/**': allBut('web'),
  }),
  // shared: the rules and shapes the server and the page both use. Every layer
  // may import it, and it imports nothing but the data shapes of types.ts (which
  // import nothing): the page's bundle and the server load it alike.
  {
    files: ['src/shared/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\./[^/]+$|\\.\\./types\\.js$)',
              message:
                'src/shared imports nothing but its own files and ../types.js: the server and the browser page both load it.',
            },
          ],
        },
      ],
    },
  },
  prettier,
);

/** Every folder but the ones named. */
function allBut(/** @type {string[]} */ ...allowed) {
  return ALL_FOLDERS.filter((folder) => !allowed.includes(folder));
}

/** One `no-restricted-imports` rule per folder: the folders it must not import from. */
function layerRules(/** @type {Record<string, string[]>} */ forbidden) {
  return Object.entries(forbidden).map(([files, folders]) => ({
    files: [files],
    rules: {
      'no-restricted-imports': /** @type {['error', object]} */ ([
        'error',
        {
          patterns: [
            {
              regex: `^(\\.\\.?/)+(${folders.join('|')})/`,
              message: `${files.replace('/**', '')} must not import from ${folders.join(', ')}: the arrows run cli → run | serve → queue → engine → results, input → download → log, metrics → utils; web and serve meet in shared only.`,
            },
          ],
        },
      ]),
    },
  }));
}
