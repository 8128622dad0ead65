import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Workflow code is replayed: it must be deterministic, so it may not reach Node built-ins, I/O
 * libraries or the activities' implementations. The asset graph is imported by workflows, so the
 * same holds for it. Only types may cross (import type is erased before bundling).
 */
const workflowSafe = {
  patterns: [
    {
      group: ['node:*'],
      message: 'workflow code is replayed: no Node built-ins (do the I/O in an activity)',
    },
    {
      group: [
        '**/activities',
        '**/activities/*',
        '**/lake/*',
        '**/client/*',
        '**/worker/*',
        '**/dev/*',
        '**/config/*',
      ],
      allowTypeImports: true,
      message: 'workflow code may import only types from activities, lake, client, worker, dev and config',
    },
    {
      group: [
        '@aws-sdk/*',
        '@temporalio/activity',
        '@temporalio/client',
        '@temporalio/worker',
        'yaml',
        'fflate',
      ],
      allowTypeImports: true,
      message: 'workflow code is replayed: no I/O libraries (do the I/O in an activity)',
    },
  ],
  paths: [
    'fs',
    'path',
    'os',
    'crypto',
    'child_process',
    'http',
    'https',
    'net',
    'url',
    'util',
    'stream',
    'events',
    'zlib',
    'process',
    'worker_threads',
    'timers',
    'dns',
    'tls',
    'readline',
    'buffer',
  ].map((name) => ({
    name,
    message: 'workflow code is replayed: no Node built-ins (do the I/O in an activity)',
  })),
};

export default tseslint.config(
  {
    ignores: ['node_modules/', '.venv/', '.tools/', '.sparkify/', 'dist/', 'spark/', '**/*.js', '**/*.mjs'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts', 'assets/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', workflowSafe] },
  },
);
