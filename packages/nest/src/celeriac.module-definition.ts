import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { CeleriacModuleOptions } from './celeriac.options.js';

/** Extras of `forRoot` / `forRootAsync`: `isGlobal` (default true) makes `TaskProducer` injectable everywhere. */
export interface CeleriacModuleExtras {
  isGlobal?: boolean;
}

export const {
  ConfigurableModuleClass: CeleriacConfigurableModule,
  MODULE_OPTIONS_TOKEN: CELERIAC_MODULE_OPTIONS,
  OPTIONS_TYPE: CELERIAC_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: CELERIAC_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<CeleriacModuleOptions>({ moduleName: 'Celeriac' })
  .setClassMethodName('forRoot')
  .setExtras<CeleriacModuleExtras>({ isGlobal: true }, (definition, extras) => ({ ...definition, global: extras.isGlobal ?? true }))
  .build();
