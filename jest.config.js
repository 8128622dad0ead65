/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  // Integration tests start real servers (Temporal, local EMR, moto, Spark); give them room.
  testTimeout: 120_000,
  setupFiles: ['<rootDir>/test/setup.ts'],
};
