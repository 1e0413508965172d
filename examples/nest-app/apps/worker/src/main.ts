import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { WorkerModule } from './worker.module.js';

// No HTTP server: an application context running the consumer side of the same modules.
const app = await NestFactory.createApplicationContext(WorkerModule);
app.enableShutdownHooks(); // SIGTERM: finish running tasks, then close connections
console.log(`worker ready (pid ${process.pid})`);
