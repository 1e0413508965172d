/**
 * @celeriac/nest — the nest adapter lands with roadmap step 6 (web adapters).
 * Until then this package only re-exports the core so imports resolve.
 */
export * from '@celeriac/core';
