import { Module } from '@nestjs/common';
import { MathService } from './math.service.js';

/** The task providers, imported by both apps. */
@Module({ providers: [MathService], exports: [MathService] })
export class TasksModule {}
