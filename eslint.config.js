// Lint for the whole tree: typescript-eslint's recommended rules, plus the type-aware rules that
// catch what this agent cannot afford: a promise nobody awaits (an export step that runs after
// its lock is released, an error nobody sees) and a promise passed where a callback is expected.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // Plain JavaScript (the bin launcher, small probe scripts) is not linted; the TypeScript is.
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'tmp/**', '**/*.js', '**/*.mjs', '!eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // A `let` assigned once, after a closure that reads it is made (a signal handler, a fake).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Tests and fixtures read JSON from real services; `any` there is the honest type.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
);
