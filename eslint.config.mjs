// ESLint (flat config) for src/, test/ and bench/: the recommended rules of ESLint and
// typescript-eslint. Formatting is Prettier's alone (.prettierrc.json); `npm run lint` runs both.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/', 'node_modules/', 'bench/out/', 'bench/django/', 'scratch/', '.scratch/', 'oclif.manifest.json']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {globals: {...globals.node, ...globals.mocha}},
    rules: {
      // `_name` marks a value kept on purpose (a destructured flag left out, a callback's unused argument)
      '@typescript-eslint/no-unused-vars': [
        'error',
        {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true},
      ],
      // tests read JSON output of the CLI, whose shape they assert
      '@typescript-eslint/no-explicit-any': 'off',
      // a handler declared first and set once the thing it serves exists
      'prefer-const': ['error', {ignoreReadBeforeAssign: true}],
    },
  },
  // the viewer's page script (templates/ui/static): a browser's globals, and no way to turn text into markup or code
  {
    files: ['templates/ui/static/**/*.js'],
    languageOptions: {globals: {...globals.browser}, sourceType: 'script'},
    rules: {
      'no-restricted-properties': [
        'error',
        ...['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'write', 'writeln', 'createContextualFragment'].map((property) => ({
          property,
          message: 'record data is text: use textContent or createTextNode',
        })),
      ],
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
    },
  },
  // CommonJS files (mocha's reporter) load their modules with require()
  {files: ['**/*.cjs'], rules: {'@typescript-eslint/no-require-imports': 'off'}},
)
