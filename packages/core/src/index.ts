/**
 * @celeriac/core — Celery for TypeScript, wire-compatible with Python Celery 5.
 *
 * ```ts
 * import { createApp } from '@celeriac/core';
 * export const celeriac = createApp('proj', { brokerUrl: 'redis://localhost:6379/0', resultBackend: 'redis://localhost:6379/1' });
 * export const add = celeriac.task('tasks.add', (x: number, y: number) => x + y);
 * const r = await add.delay(2, 2);
 * await r.get({ timeout: 5_000 }); // 4
 * ```
 */
import { Task as TaskDecorator } from './task-decorator.js';
import type { Task as TaskHandle } from './task.js';

export { Celeriac, createApp, currentApp } from './app.js';
export type { SendItem } from './app.js';
export type { ApplyOptions } from './apply-options.js';
export { fromObject, defaultSettings, resolveSettings } from './config.js';
export type { Settings, TaskRoute, FromObjectOptions, BrokerTransportOptions } from './config.js';
export type { TaskRoutes, TaskRouter, TaskRouteMap, TaskRoutePairs, TaskRouterEntry, RouteTarget } from './task-routes.js';
export type { TaskOptions, TaskFunction, ErrorClass, ApplyCall } from './task.js';
export type { TaskDecoratorOptions, TaskMethods } from './task-decorator.js';
export { currentTask } from './task-context.js';
export type { TaskContext, RetryOptions, DeliveryInfo } from './task-context.js';
export { AsyncResult } from './result.js';
export type { GetOptions, ResultSnapshot } from './result.js';
// Canvas: signatures, chain / group / chord, map / starmap / chunks, group results.
export { Signature, Chain, chain, Group, group, Chord, chord, GroupResult, resultFromTuple, Chunks, xmap, xstarmap } from './canvas/index.js';
export type { CanvasResult, FreezeOptions, LastResult, ResultOf } from './canvas/index.js';
export { registerCanvasBuiltins } from './canvas/builtins.js';
export type { ResultNode } from './result.js';
export type { ChordPart, ChordMember } from './backends/backend.js';
export { States, READY_STATES, EXCEPTION_STATES, PROPAGATE_STATES } from './states.js';
export type { TaskState } from './states.js';
export * from './errors.js';
export { Worker } from './worker/worker.js';
export type { WorkerOptions, WorkerStats, AddConsumerOptions } from './worker/worker.js';
export type { Broker, Consumer, ConsumerOptions, Delivery, EarlyAck, IfWorkerLost, RunningTask, Route, ReserveOptions, PublishItem } from './brokers/broker.js';
export type { ResultBackend, ResultDocument, ExceptionDocument } from './backends/backend.js';
export { createBroker } from './brokers/index.js';
export { createBackend } from './backends/index.js';
export type { TaskMessage, TaskHeaders, MessageProperties, WireSignature, Embed } from './protocol/message.js';
export { buildTaskMessage, decodeTaskMessage } from './protocol/task-message.js';
export type { TaskMessageSpec, DecodedTask } from './protocol/task-message.js';
export { dumpsPython, loadsPython } from './protocol/python-json.js';
export { createLogger } from './logger.js';
// Worker depth: pools, limits, serializers, signals.
export type { PoolKind } from './worker/worker.js';
export type { RateLimit } from './worker/rate-limits.js';
export { registerSerializer, serializerNames } from './protocol/serialization.js';
export type { Serializer } from './protocol/serialization.js';
export { compressionNames } from './protocol/compression.js';
export { Signals, signalsOf } from './signals.js';
export type { SignalName, SignalPayloads, SignalHandler } from './signals.js';
export { Control, Inspect } from './control/control-client.js';
export type { ControlOptions, ControlReplies } from './control/control-client.js';
export type { ControlChannel, ReplyQueue } from './brokers/broker.js';
export type { RequestInfo } from './control/request-info.js';
export { Events } from './events/events.js';
export { EventReceiver } from './events/event-receiver.js';
export type { EventHandler } from './events/event-receiver.js';
export { EventState } from './events/event-state.js';
export type { WorkerInfo, TaskInfo } from './events/event-state.js';
export type { CeleryEvent } from './events/event-message.js';
export type { LogFormat, LoggerOptions, LogLevel, Logger } from './logger.js';
// Beat: periodic tasks.
export { crontab, Crontab } from './beat/crontab.js';
export type { CrontabFields } from './beat/crontab.js';
export { CrontabFieldError } from './beat/crontab-field.js';
export type { CrontabFieldName, CrontabFieldValue } from './beat/crontab-field.js';
export { every, IntervalSchedule } from './beat/interval.js';
export type { IntervalParts } from './beat/interval.js';
export { isDue, ScheduleError } from './beat/schedule.js';
export type { Schedule, ScheduleJSON, DueCheck } from './beat/schedule.js';
export type { BeatEntry, BeatScheduleConfig, BeatSendOptions, ResolvedEntry, StoredEntry } from './beat/entry.js';
export { Beat } from './beat/beat.js';
export type { BeatOptions } from './beat/beat.js';
export { ManualClock, systemClock } from './beat/clock.js';
export type { BeatClock } from './beat/clock.js';
export { BeatRegistry } from './beat/registry.js';
export { DynamicSchedule } from './beat/dynamic-schedule.js';
export type { DynamicEntryInfo, BeatEntryPatch } from './beat/dynamic-schedule.js';
export type { BeatStateStore, LastRun, ClaimOutcome, LeaderFence } from './beat/state-store.js';

// Web adapters' shared behaviour (docs/web-adapters.md): one app per process, bound lazily;
// request context into task headers; 503 on broker outages; embedded worker; status and SSE.
export { isCeleriacApp } from './process-state.js';
export { bindApp, boundBrokerUrl, settingsFromConfig } from './web/bind-app.js';
export type { BindConfig } from './web/bind-app.js';
export { runWithRequestContext, currentRequestContext, requestContextFromHeaders, requestContextFromMessage, isTraceparent, REQUEST_CONTEXT_HEADERS } from './web/request-context.js';
export type { RequestContext } from './web/request-context.js';
export { createTaskProducer } from './web/task-producer.js';
export type { TaskProducer, TaskProducerOptions } from './web/task-producer.js';
export { activeTraceHeaders } from './web/trace-context.js';
export type { TraceHeaders } from './web/trace-context.js';
export { httpErrorOf } from './web/http-errors.js';
export type { HttpError, HttpErrorBody } from './web/http-errors.js';
export { startEmbeddedWorker, wantsEmbeddedWorker } from './web/embedded-worker.js';
export { useApp, appUsers } from './web/app-users.js';
export type { AppUse } from './web/app-users.js';
export type { EmbeddedWorker, EmbeddedWorkerMode, EmbeddedWorkerOptions } from './web/embedded-worker.js';
export { getTaskStatus, watchTaskStatus, taskStatusOf, isTaskId } from './web/task-status.js';
export type { TaskStatus, TaskStatusOptions, WatchTaskOptions } from './web/task-status.js';
export { SseStream, SseStreams, streamTaskEvents } from './web/sse.js';
export type { SseOptions, SseResponse, TaskEventsOptions } from './web/sse.js';
export type { ResultWatch } from './backends/backend.js';

/**
 * `@Task()` marks a class method as a task (see `Celeriac.registerTasks`);
 * `Task<Args, Result>` is the type of a registered task.
 */
export const Task = TaskDecorator;
/**
 * A registered task, as `app.task(...)` returns it: call it to run in-process;
 * `delay` / `applyAsync` send it to a worker. Types flow from the function.
 */
// An interface (not a type alias) so the API reference documents its members.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Task<A extends unknown[] = unknown[], R = unknown> extends TaskHandle<A, R> {}

// Types that public signatures refer to (named here so the API reference shows them).
export type { EncodedResult, ResultTuple, WaitOptions } from './backends/backend.js';
export type { BrokerFactoryOptions } from './brokers/index.js';
export type { ResultSource } from './result.js';
export type { SignatureSender } from './canvas/signature.js';
export type { RetryPolicy } from './config.js';
export type { ConnectionEvents } from './redis-client.js';
export { ReplicationWaitError } from './redis-replication.js';
export type { SentinelKwargs, SentinelTransportOptions } from './redis-sentinel.js';
export type { DecodeLimits } from './protocol/task-message.js';
// Dashboard: live web view, Flower's JSON API, guarded actions.
export * from './dashboard/index.js';
