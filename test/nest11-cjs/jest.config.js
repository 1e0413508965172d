// Jest + ts-jest (CommonJS, decorator metadata from the TypeScript compiler).
// @celeriac/* are the repository's CommonJS builds; NestJS, rxjs and reflect-metadata
// always come from this folder, so the adapter runs on Nest 11 even though the
// repository itself installs Nest 12.
const path = require('node:path');
const repo = path.resolve(__dirname, '../..');
const here = (name) => path.join(__dirname, 'node_modules', name);

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] },
  moduleNameMapper: {
    '^@celeriac/(core|nest)$': `${repo}/packages/$1/dist/cjs/index.js`,
    '^@nestjs/([^/]+)(/.*)?$': `${here('@nestjs')}/$1$2`,
    '^rxjs(/.*)?$': `${here('rxjs')}$1`,
    '^reflect-metadata$': here('reflect-metadata'),
  },
  testTimeout: 30000,
};
