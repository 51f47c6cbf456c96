/** Unit tests sit next to the code (*.spec.ts); e2e tests live in test/ (*.e2e-spec.ts). */
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  moduleFileExtensions: ['js', 'json', 'ts'],
  // These end-to-end suites need the bundled mock PSP (src/mock-psp, issue 3) and the webhook
  // pipeline (issue 4), which are not built yet; they are kept as the acceptance tests for that work
  // and must be re-enabled (remove this list) when those land.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/orders/', '<rootDir>/test/operations/', '<rootDir>/test/launcher/'],
  testRegex: '(src/.*\\.spec\\.ts|test/.*\\.e2e-spec\\.ts)$',
  transform: { '^.+\\.ts$': 'ts-jest' },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60000,
};
