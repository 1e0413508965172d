/** Wire types of Celery's result backend documents (`celery-task-meta-<id>`). */
import type { TaskState } from '../states.js';

/** Celery's exception document: `{exc_type, exc_message, exc_module}`. */
export interface ExceptionDocument {
  exc_type: string;
  exc_message: unknown[] | string;
  exc_module: string;
}

/** A child reference as Celery stores it: `[[id, null], null]` or a group tuple. */
export type ResultTuple = [[string, ResultTuple | string | null], unknown];

/**
 * The result document stored under `celery-task-meta-<id>`, field for field as
 * Celery 5.2 writes it.
 */
export interface ResultDocument {
  status: TaskState;
  result: unknown;
  traceback: string | null;
  children: ResultTuple[];
  /** Naive UTC ISO timestamp for ready states, null otherwise. */
  date_done: string | null;
  group_id?: string;
  parent_id?: string;
  task_id: string;
  /** `result_extended` fields and anything else a peer stored. */
  [extra: string]: unknown;
}
