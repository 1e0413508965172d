/**
 * msgpack and yaml, as kombu 5.2 registers them, so Python Celery reads what
 * Celeriac writes and the other way round:
 *
 * - msgpack (`application/x-msgpack`, binary): kombu packs with `use_bin_type=True`
 *   and unpacks with `raw=False` — strings as str, Buffers as bin. Plain maps (no
 *   msgpackr records or extensions); integers beyond 2^53 as BigInt. A Date goes
 *   out as the msgpack timestamp extension (-1), which Python's msgpack returns as
 *   `msgpack.Timestamp` (`.to_datetime()`); a Map as a map.
 * - yaml (`application/x-yaml`, utf-8): kombu's `yaml.safe_dump` / `safe_load`
 *   (PyYAML speaks YAML 1.1): js-yaml, see `PYYAML_OUTPUT`. Dates are YAML
 *   timestamps (Python reads `datetime`), Buffers `!!binary` (Python `bytes`; they
 *   come back as Uint8Array).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as JsYaml from 'js-yaml';
import type * as Msgpackr from 'msgpackr';
import { moduleRoot } from '../module-root.cjs';
import type { Serializer } from './serialization.js';

// Both libraries are loaded on first use: most workers never see msgpack or yaml, and
// loading them (msgpackr's native extension included) cost a worker ~10 MB of RSS.
const requireHere = createRequire(join(moduleRoot, 'index.js'));

let packrInstance: Msgpackr.Packr | undefined;
function packr(): Msgpackr.Packr {
  if (!packrInstance) {
    const { Packr } = requireHere('msgpackr') as typeof Msgpackr;
    // 'auto' (a safe integer as a number, a larger one as BigInt) is supported by msgpackr's
    // decoder but missing from its typings.
    packrInstance = new Packr({
      useRecords: false, // msgpackr's record extension is not msgpack Python can read
      mapsAsObjects: true,
      variableMapSize: true,
      int64AsType: 'auto' as 'bigint',
      encodeUndefinedAsNil: true,
    });
  }
  return packrInstance;
}

/**
 * msgpackr writes a whole number beyond 32 bits as a float64, which Python reads as a
 * float (`1099511627776.0`); as a BigInt it goes out as a msgpack int64, as Python
 * writes it. Containers are copied only where such a number is found.
 */
function wideIntegersAsBigInt(value: unknown): unknown {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >>> 0 !== value && value >> 0 !== value ? BigInt(value) : value;
  }
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const converted = wideIntegersAsBigInt(item);
      if (converted !== item) (copy ??= value.slice())[i] = converted;
    }
    return copy ?? value;
  }
  if (value instanceof Map) {
    let changed = false;
    const out = new Map<unknown, unknown>();
    for (const [k, v] of value) {
      const converted = wideIntegersAsBigInt(v);
      changed ||= converted !== v;
      out.set(k, converted);
    }
    return changed ? out : value;
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    let copy: Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(value)) {
      const converted = wideIntegersAsBigInt(v);
      if (converted !== v) (copy ??= { ...(value as Record<string, unknown>) })[k] = converted;
    }
    return copy ?? value;
  }
  return value;
}

/** kombu's msgpack serializer. */
export const msgpack: Serializer = {
  name: 'msgpack',
  contentType: 'application/x-msgpack',
  contentEncoding: 'binary',
  encode: (value) => packr().pack(wideIntegersAsBigInt(value)),
  decode: (body) => packr().unpack(body),
};

/**
 * What PyYAML's safe_dump writes, read back: YAML 1.2 core scalars (it writes
 * `true`/`false`/`null` and quotes any string YAML 1.1 would take for a bool, such as
 * 'yes' or 'n'), plus timestamps and binary. js-yaml's YAML 1.1 schema would read a
 * plain key `n` or `y` as a boolean, which PyYAML never does. Writing uses the YAML 1.1
 * schema, so such strings are quoted for PyYAML.
 */
let yamlLib: { lib: typeof JsYaml; pyyamlOutput: JsYaml.Schema } | undefined;
function jsYaml(): NonNullable<typeof yamlLib> {
  if (!yamlLib) {
    const lib = requireHere('js-yaml') as typeof JsYaml;
    yamlLib = { lib, pyyamlOutput: lib.CORE_SCHEMA.withTags(lib.timestampTag, lib.binaryTag) };
  }
  return yamlLib;
}

/**
 * The value as YAML can take it: a `Map` becomes a mapping (string keys, as
 * msgpack and JSON carry it), a `BigInt` in the 53-bit range a number; a wider
 * `BigInt` is refused with what to use instead (js-yaml writes no integer past
 * 2^53 exactly).
 */
function yamlReady(value: unknown, path = 'value'): unknown {
  if (typeof value === 'bigint') {
    if (Number.isSafeInteger(Number(value))) return Number(value);
    throw new TypeError(`The yaml serializer cannot carry the integer ${value} (${path}) exactly: send it with json or msgpack, or as a string.`);
  }
  if (value instanceof Map) return yamlReady(Object.fromEntries([...value].map(([k, v]) => [String(k), v])), path);
  if (Array.isArray(value)) return value.some((v) => typeof v === 'bigint' || (v !== null && typeof v === 'object')) ? value.map((v, i) => yamlReady(v, `${path}[${i}]`)) : value;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = yamlReady(v, `${path}.${k}`);
    return out;
  }
  return value;
}

/** kombu's yaml serializer. */
export const yaml: Serializer = {
  name: 'yaml',
  contentType: 'application/x-yaml',
  contentEncoding: 'utf-8',
  encode: (value) => {
    const { lib } = jsYaml();
    return Buffer.from(lib.dump(yamlReady(value), { schema: lib.YAML11_SCHEMA }), 'utf8');
  },
  decode: (body) => {
    const { lib, pyyamlOutput } = jsYaml();
    return lib.load(body.toString('utf8'), { schema: pyyamlOutput });
  },
};
