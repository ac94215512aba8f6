#!/usr/bin/env node
// @ts-check
/**
 * The type check and ESLint in one process, over one TypeScript program per
 * tsconfig (part of `npm test`). ESLint's typed rules need the same program
 * `tsc --noEmit` builds; run apart, the two parse, bind and check every file
 * twice. Here typescript-eslint is handed the programs (`parserOptions.programs`)
 * and the type check reads its diagnostics from the same checker afterwards:
 * ~45 s of CPU instead of ~58 s (README, Development). It checks what
 * `npm run typecheck` and `eslint .` check, with the same rules. The lint
 * goes first: its typed rules compute most of what the type check needs, and
 * the type check after it costs a few seconds (the other order costs the same
 * in all). npm test runs this with V8 flags that keep the GC off other
 * threads and rarely marking (scripts/test.js).
 *
 *   node scripts/check.js        exit 0 when both pass, else 1
 */
import ts from 'typescript';
import { ESLint } from 'eslint';

const programs = ['tsconfig.json', 'src/web/tsconfig.json'].map(programOf);

const eslint = new ESLint({
  overrideConfig: [
    {
      files: ['**/*.ts'],
      languageOptions: { parserOptions: { projectService: false, programs } },
    },
  ],
});
const lintResults = await eslint.lintFiles(['.']);
const lintOutput = await (await eslint.loadFormatter('stylish')).format(lintResults);
const lintFailed = lintResults.some(
  (result) => result.errorCount > 0 || result.fatalErrorCount > 0,
);

const diagnostics = programs.flatMap((program) => ts.getPreEmitDiagnostics(program));
const typesFailed = diagnostics.some(
  (diagnostic) => diagnostic.category === ts.DiagnosticCategory.Error,
);
process.stdout.write(
  ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => process.cwd(),
    getNewLine: () => '\n',
  }),
);
process.stdout.write(lintOutput);
if (typesFailed) process.stdout.write('the type check failed\n');
if (lintFailed) process.stdout.write('eslint failed\n');
process.exitCode = typesFailed || lintFailed ? 1 : 0;

/** The program `tsc -p <configPath>` would check. */
function programOf(/** @type {string} */ configPath) {
  const config = ts.getParsedCommandLineOfConfigFile(configPath, undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    },
  });
  if (config === undefined) throw new Error(`cannot read ${configPath}`);
  return ts.createProgram({
    rootNames: config.fileNames,
    options: config.options,
    configFileParsingDiagnostics: config.errors,
  });
}
