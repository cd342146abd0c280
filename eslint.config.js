// ESLint (flat config): typescript-eslint's recommended rules, plus the layering of src/: the
// platform beneath the modules and importing none of them, the compute engine and the file formats
// independent of both, no import cycles, no module reaching into another's storage, and SQL only
// in storage files. `npm run lint`; CI runs it after the type-check.
import { readdirSync } from 'node:fs';
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** The domain modules: every folder of src/modules but the generated code. */
const MODULES = readdirSync(new URL('./src/modules/', import.meta.url), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && entry.name !== 'generated')
  .map((entry) => entry.name)
  .sort();

/** Storage files: the only ones that run SQL or call Prisma (src/platform/db is the platform's storage). */
const STORAGE = ['**/storage.ts', '**/*-storage.ts', 'src/platform/db/**'];

const SQL_MESSAGE = 'runs SQL or calls Prisma: only storage files do (storage.ts, <name>-storage.ts, src/platform/db/**); call a storage function instead';

export default tseslint.config(
  {
    ignores: [
      // Build output, the IDE's bundle (dist/web) included.
      'dist/**',
      '**/node_modules/**',
      'src/platform/db/generated/**',
      'src/modules/generated/**',
      'web/explorer/src/gql/**',
      '.tangent/**',
      // UCR archive files: `.ts` is their time-series format, not TypeScript.
      'datasets/**',
    ],
  },
  js.configs.recommended,
  // Not recommendedTypeChecked: it took 80 s on a busy 2-core machine where these rules take 25 s
  // (37 s of CPU against 15 s), with some 2,000 findings that are mostly no-unsafe-* on the tests' untyped JSON
  // and no-floating-promises on node:test's describe/test. tsc --strict covers the types.
  ...tseslint.configs.recommended,
  {
    rules: {
      // Deliberate style in this code base, not mistakes:
      // - `_`-prefixed parameters and destructured leftovers name what is ignored (resolver signatures, `[, value]`).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // - TypeScript checks undefined names itself (and knows every global); ESLint's own check only duplicates it.
      'no-undef': 'off',
    },
  },
  {
    // Tests, benches and examples read GraphQL responses, which are untyped JSON: `any` there is the honest type.
    files: ['test/**', 'bench/**', 'examples/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Hostile inputs: integers past 2^53 spelled out on purpose, to see what the server makes of them.
    files: ['bench/hostile.ts'],
    rules: { 'no-loss-of-precision': 'off' },
  },
  {
    // The layering, over src/ (imports resolved as TypeScript does: `.js` specifiers name `.ts` files).
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      // How import-x reads TypeScript (without it, no-cycle sees no exports and finds no cycle).
      'import-x/extensions': importX.flatConfigs.typescript.settings['import-x/extensions'],
      'import-x/parsers': importX.flatConfigs.typescript.settings['import-x/parsers'],
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            {
              target: 'src/platform',
              from: ['src/modules', 'src/cli', 'src/server.ts', 'src/main.ts'],
              message: 'The platform imports no module, command or server: receive what it needs (an interface in src/platform) from the caller.',
            },
            {
              target: 'src/compute',
              from: ['src/platform', 'src/modules', 'src/io', 'src/cli', 'src/server.ts', 'src/main.ts'],
              message: 'The compute engine stands alone (it runs in worker threads and without the server).',
            },
            {
              target: 'src/io',
              from: ['src/modules', 'src/cli', 'src/server.ts', 'src/main.ts'],
              message: 'File formats import no module: modules call them.',
            },
            ...MODULES.map((module) => ({
              target: `src/modules/${module}`,
              from: MODULES.filter((other) => other !== module).flatMap((other) => [`src/modules/${other}/**/storage.ts`, `src/modules/${other}/**/*-storage.ts`]),
              message: `A module never imports another module's storage: call that module's service instead.`,
            })),
          ],
        },
      ],
    },
  },
  {
    // No SQL outside storage.
    files: ['src/modules/**/*.ts', 'src/platform/**/*.ts'],
    ignores: STORAGE,
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[property.name='prisma']", message: `\`.prisma\` ${SQL_MESSAGE}.` },
        { selector: "CallExpression[callee.property.name='query']", message: `\`.query(...)\` ${SQL_MESSAGE}.` },
        { selector: "CallExpression[callee.property.name='copyFrom']", message: `\`.copyFrom(...)\` ${SQL_MESSAGE}.` },
        { selector: 'MemberExpression[property.name=/^\\$(queryRaw|executeRaw)/]', message: `\`$queryRaw\`/\`$executeRaw\` ${SQL_MESSAGE}.` },
      ],
    },
  },
);
