import { hostname as osHostname } from 'node:os';
import { ConfigurationError } from '../errors.js';

/** The name part used when `-n` gives none (Celery's is `celery`). */
export const NODENAME_DEFAULT = 'celeriac';

/**
 * The worker's node name from `-n`, expanded as Celery's
 * `host_format(default_nodename(spec))` does: a spec without `@` is a host
 * (`-n web1` → `celeriac@web1`); then `%h` is the full host name, `%n` the host
 * name up to the first dot, `%d` the domain after it, `%i` the pool process index
 * (`0` in the main process, the only one Celeriac has) and `%I` the same with a
 * dash prefix (empty in the main process). Unknown `%x` is an error.
 */
export function expandNodeName(spec: string | undefined, host: string = osHostname()): string {
  const raw = spec ?? '';
  const at = raw.indexOf('@');
  const [name, nodeHost] = at === -1 ? [null, raw] : [raw.slice(0, at), raw.slice(at + 1)];
  const node = `${name || NODENAME_DEFAULT}@${nodeHost || host}`;
  const dot = host.indexOf('.');
  const keys: Record<string, string> = {
    h: host,
    n: dot === -1 ? host : host.slice(0, dot),
    d: dot === -1 ? '' : host.slice(dot + 1),
    i: '0',
    I: '',
  };
  return node.replace(/%(\w)/g, (_, key: string) => {
    const value = keys[key];
    if (value === undefined) {
      throw new ConfigurationError(`Unknown format %${key} in -n ${JSON.stringify(raw)}: use %h, %n, %d, %i, %I (or no % at all), e.g. -n worker1@%h.`);
    }
    return value;
  });
}
