import type { ResultDocument, ResultTuple } from '../backends/backend.js';
import type { DecodedTask } from '../protocol/task-message.js';
import { formatNaiveUtc } from '../protocol/time.js';
import { READY_STATES, type TaskState } from '../states.js';

/** `result_extended` fields. */
export interface ExtendedFields {
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  worker: string;
  retries: number;
  queue: string;
}

/**
 * A result document with Celery 5.2's fields in Celery's order: status, result,
 * traceback, children, date_done, [group_id], [parent_id], [extended], task_id.
 */
export function resultDocument(
  request: Pick<DecodedTask, 'id' | 'groupId' | 'parentId'>,
  status: TaskState,
  result: unknown,
  traceback: string | null = null,
  children: ResultTuple[] = [],
  extended?: ExtendedFields,
): ResultDocument {
  const doc: Partial<ResultDocument> = {
    status,
    result,
    traceback,
    children,
    date_done: READY_STATES.has(status) ? formatNaiveUtc(new Date()) : null,
  };
  if (request.groupId) doc.group_id = request.groupId;
  if (request.parentId) doc.parent_id = request.parentId;
  if (extended) Object.assign(doc, extended);
  doc.task_id = request.id;
  return doc as ResultDocument;
}

/** `[[id, null], null]`, how Celery lists a child task. */
export function childTuple(taskId: string): ResultTuple {
  return [[taskId, null], null];
}
