import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'gen/', 'coverage/', 'bench/out/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  // String#localeCompare's first call loads ICU's collation data (~3 MiB RSS for good): the
  // server orders its identifiers with src/text-order.ts.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/console/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          property: 'localeCompare',
          message:
            "Use compareStrings from src/text-order.ts (localeCompare loads ICU's collation data).",
        },
      ],
    },
  },
  // CommonJS config files of tools (dependency-cruiser reads .cjs).
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable' } },
  },
);
