import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  {
    ignores: [
      'probe/',
      'node_modules/',
      'cdk.out*/',
      '.data/',
      'bench/results/',
      'coverage/',
      'clients/typescript/dist/',
      // A deliberate import cycle; test/unit/architecture.test.ts lints it explicitly.
      'test/fixtures/cycle/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  importX.flatConfigs.typescript,
  {
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      // The tree stays acyclic (value imports; `import type` edges are erased at run time).
      'import-x/no-cycle': 'error',
    },
  },
  {
    // Functions and shared code log through shared/log.ts (structured on AWS, one line locally).
    files: ['shared/**/*.ts', 'functions/**/*.ts'],
    rules: { 'no-console': 'error' },
  },
);
