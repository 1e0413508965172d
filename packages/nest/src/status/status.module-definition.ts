import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { CeleriacStatusOptions } from './status.options.js';

export const {
  ConfigurableModuleClass: CeleriacStatusConfigurableModule,
  MODULE_OPTIONS_TOKEN: CELERIAC_STATUS_OPTIONS,
  OPTIONS_TYPE: CELERIAC_STATUS_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<CeleriacStatusOptions>({ moduleName: 'CeleriacStatus' }).setClassMethodName('forRoot').build();
