import type { Celeriac, Task } from '@celeriac/core';
export const app: Celeriac;
export const echo: Task<[value: number], number>;
