/**
 * `taskRoutes` (Celery's `task_routes`) in every form Celery 5.2 accepts
 * (celery/app/routes.py), compiled once into one lookup:
 *
 * - a map: task name → route, `'feed.tasks.*'` globs (fnmatch: `*`, `?`, `[seq]`);
 * - ordered `[pattern, route]` pairs, the pattern a name, a glob or a `RegExp`
 *   (Celery's `re.compile(...)`, matched from the start of the name like `re.match`);
 *   in JSON or env settings a string pattern `/…/flags` is a regexp;
 * - a router function `(name, args, kwargs, options, task) => route | null`;
 * - a list of any of these, asked in order until one gives a route.
 *
 * A route is a queue name or Celery's dict `{queue, exchange, routing_key, priority}`
 * (camelCase `routingKey` too).
 */
import type { ApplyOptions } from './apply-options.js';
import type { TaskRoute } from './config.js';
import { ConfigurationError } from './errors.js';
import type { Task } from './task.js';

/** Where a route sends a task: a queue name, or Celery's route dict. */
export type RouteTarget = string | TaskRoute | { queue?: string; exchange?: string; routing_key?: string; priority?: number };

/**
 * Celery's router function: `(name, args, kwargs, options, task)`; returns a route, or
 * null/undefined to let the next router decide.
 */
export type TaskRouter = (
  name: string,
  args: readonly unknown[],
  kwargs: Readonly<Record<string, unknown>>,
  options: Readonly<ApplyOptions>,
  task: Task | undefined,
) => RouteTarget | null | undefined;

/** Task name, glob (`feed.*`) or `/regexp/` → route. */
export type TaskRouteMap = Readonly<Record<string, RouteTarget>>;

/** Ordered `[pattern, route]` pairs: pattern a name, a glob or a `RegExp`. */
export type TaskRoutePairs = ReadonlyArray<readonly [string | RegExp, RouteTarget]>;

/** One router of a `taskRoutes` list. */
export type TaskRouterEntry = TaskRouteMap | TaskRouter | TaskRoutePairs | readonly [string | RegExp, RouteTarget];

/** `taskRoutes`: one router, or a list asked in order. */
export type TaskRoutes = TaskRouteMap | TaskRouter | readonly TaskRouterEntry[];

/** What a router is asked about one send. */
export interface RouteQuery {
  name: string;
  args: readonly unknown[];
  kwargs: Readonly<Record<string, unknown>>;
  options: Readonly<ApplyOptions>;
  task: Task | undefined;
}

type Lookup = (q: RouteQuery) => TaskRoute | null;

const compiled = new WeakMap<object, Lookup>();

/** The route `taskRoutes` gives a send, or null (Celery's `Router.lookup_route`). */
export function lookupTaskRoute(routes: TaskRoutes | null | undefined, query: RouteQuery): TaskRoute | null {
  if (!routes) return null;
  let lookup = compiled.get(routes);
  if (!lookup) compiled.set(routes, (lookup = compileTaskRoutes(routes)));
  return lookup(query);
}

/** Compile `taskRoutes` into one lookup; throws a `ConfigurationError` naming a bad entry. */
export function compileTaskRoutes(routes: TaskRoutes): Lookup {
  const entries: TaskRouterEntry[] = Array.isArray(routes) && !isPair(routes) ? [...(routes as readonly TaskRouterEntry[])] : [routes as TaskRouterEntry];
  const lookups = entries.map((entry, i) => compileEntry(entry, entries.length > 1 ? `taskRoutes[${i}]` : 'taskRoutes'));
  return (q) => {
    for (const lookup of lookups) {
      const route = lookup(q);
      if (route) return route;
    }
    return null;
  };
}

function isPair(value: unknown): value is readonly [string | RegExp, RouteTarget] {
  return Array.isArray(value) && value.length === 2 && (typeof value[0] === 'string' || value[0] instanceof RegExp) && !Array.isArray(value[1]);
}

function compileEntry(entry: TaskRouterEntry, where: string): Lookup {
  if (typeof entry === 'function') {
    const router = entry as TaskRouter;
    return (q) => {
      const target = router(q.name, q.args, q.kwargs, q.options, q.task);
      return target === null || target === undefined ? null : toRoute(target, `the route ${where} returned for ${q.name}`);
    };
  }
  if (isPair(entry)) return compilePairs([entry], where);
  if (Array.isArray(entry)) return compilePairs(entry as TaskRoutePairs, where);
  if (entry && typeof entry === 'object') return compilePairs(Object.entries(entry as TaskRouteMap), where);
  throw new ConfigurationError(`${where} must be a map of task name → route, a list of [pattern, route] pairs or a router function, got ${JSON.stringify(entry)}.`);
}

/** Celery's `MapRoute`: exact names first, then the patterns in order. */
function compilePairs(pairs: TaskRoutePairs, where: string): Lookup {
  const exact = new Map<string, TaskRoute>();
  const patterns: [RegExp, TaskRoute][] = [];
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new ConfigurationError(`${where}: every entry must be a [pattern, route] pair, got ${JSON.stringify(pair)}.`);
    const [pattern, target] = pair;
    const route = toRoute(target, `${where} entry ${String(pattern)}`);
    if (pattern instanceof RegExp) patterns.push([anchoredAtStart(pattern), route]);
    else if (typeof pattern === 'string' && /^\/.+\/[a-z]*$/.test(pattern)) patterns.push([anchoredAtStart(parseRegExp(pattern, where)), route]);
    else if (typeof pattern === 'string' && pattern.includes('*')) patterns.push([fnmatchToRegExp(pattern), route]);
    else if (typeof pattern === 'string') exact.set(pattern, route);
    else throw new ConfigurationError(`${where}: a pattern must be a task name, a glob or a RegExp, got ${JSON.stringify(pattern)}.`);
  }
  return ({ name }) => {
    const hit = exact.get(name);
    if (hit) return { ...hit };
    for (const [re, route] of patterns) {
      re.lastIndex = 0;
      if (re.test(name)) return { ...route };
    }
    return null;
  };
}

function parseRegExp(text: string, where: string): RegExp {
  const end = text.lastIndexOf('/');
  try {
    return new RegExp(text.slice(1, end), text.slice(end + 1));
  } catch (err) {
    throw new ConfigurationError(`${where}: ${text} is not a valid regular expression (${(err as Error).message}).`);
  }
}

/** Python's `re.match`: the match must start at the first character (sticky, not global). */
function anchoredAtStart(re: RegExp): RegExp {
  return new RegExp(re.source, re.flags.replace(/[gy]/g, '') + 'y');
}

/** Python's `fnmatch.translate`: `*` any run, `?` one character, `[seq]` / `[!seq]` a class; whole name. */
export function fnmatchToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) out += '\\[';
      else {
        let body = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = '^' + body.slice(1);
        else if (body.startsWith('^')) body = '\\' + body;
        out += `[${body}]`;
        i = close;
      }
    } else out += c.replace(/[.+^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 's');
}

const ROUTE_KEYS: Record<string, keyof TaskRoute> = { queue: 'queue', exchange: 'exchange', routingKey: 'routingKey', routing_key: 'routingKey', priority: 'priority' };

/** A queue name or route dict as a `TaskRoute`; unknown keys are an error naming the known ones. */
function toRoute(target: unknown, where: string): TaskRoute {
  if (typeof target === 'string') {
    if (target === '') throw new ConfigurationError(`${where}: the queue name is empty.`);
    return { queue: target };
  }
  if (!target || typeof target !== 'object' || Array.isArray(target)) {
    throw new ConfigurationError(`${where} must be a queue name or a route ({ queue, exchange, routing_key, priority }), got ${JSON.stringify(target)}.`);
  }
  const route: TaskRoute = {};
  for (const [key, value] of Object.entries(target)) {
    const field = ROUTE_KEYS[key];
    if (!field) throw new ConfigurationError(`${where} has ${JSON.stringify(key)}: a route takes queue, exchange, routing_key (routingKey) and priority.`);
    if (value === null || value === undefined) continue;
    if (field === 'priority') {
      if (typeof value !== 'number') throw new ConfigurationError(`${where}: priority must be a number 0–9, got ${JSON.stringify(value)}.`);
      route.priority = value;
    } else {
      if (typeof value !== 'string') throw new ConfigurationError(`${where}: ${key} must be a string, got ${JSON.stringify(value)}.`);
      route[field] = value;
    }
  }
  return route;
}
