/**
 * Unit tests sit next to the code (*.spec.ts); service tests (services on real PostgreSQL, the PSP
 * client faked per test) in test/services (*.service-spec.ts); e2e tests in test/ (*.e2e-spec.ts).
 */
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  moduleFileExtensions: ['js', 'json', 'ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testRegex: '(src/.*\\.spec\\.ts|test/.*\\.(e2e|service)-spec\\.ts)$',
  transform: {
    '^.+\\.ts$': 'ts-jest',
    // NestJS 12 ships ES modules; see the transform for why tests convert them.
    '^.+\\.m?js$': '<rootDir>/test/support/esm-to-cjs.transform.js',
  },
  // Only packages published as ES modules need the transform; everything else loads as is.
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|file-type|strtok3|token-types|@tokenizer|uint8array-extras|@electric-sql|@borewit)/)'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60000,
};
