/**
 * Vitest for the NestJS tests (Nest 12, ESM). TypeScript goes through the
 * TypeScript compiler (`transpileModule`), not Vite's own transform: Nest's
 * constructor injection needs `emitDecoratorMetadata`, which only tsc emits.
 */
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { defineConfig, type Plugin } from 'vitest/config';

const repo = fileURLToPath(new URL('../..', import.meta.url));

function tscTransform(): Plugin {
  return {
    name: 'celeriac-tsc-decorators',
    enforce: 'pre',
    transform(code, id) {
      const file = id.split('?')[0]!;
      if (!file.endsWith('.ts') || file.includes('/node_modules/')) return null;
      const out = ts.transpileModule(code, {
        fileName: file,
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.ESNext,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          sourceMap: true,
        },
      });
      return { code: out.outputText, map: out.sourceMapText ? JSON.parse(out.sourceMapText) : null };
    },
  };
}

export default defineConfig({
  root: repo,
  oxc: false,
  plugins: [tscTransform()],
  test: {
    include: ['test/nest/**/*.spec.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 90_000,
  },
});
