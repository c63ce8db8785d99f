/**
 * The rules every way into a collection shares: the limits, and the validators of a vector's
 * id, components and metadata. The HTTP API's request schemas (`api/schemas.ts`) and the
 * import formats (`import/formats/*`) both build on these, so a row is accepted or refused by
 * the same rules however it arrives, and import code does not depend on the HTTP layer.
 *
 * The hot loops (vector values, metadata) are hand-written checks inside `transform`s, not
 * per-element zod schemas: an upsert may carry 1000 × 4096 numbers.
 */
import { z } from 'zod';
import type { JsonValue, Metadata } from './types.js';

/** Limits, documented in the API reference. */
export const LIMITS = {
  /** Collection names: `^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`. */
  collectionName: /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/,
  maxDimension: 4096,
  /**
   * Raw model input values per row (256 KiB of float32): a 3 × 128 × 128 image or a long feature vector fits;
   * a larger row is cheaper to embed outside and upsert as values (docs/models.md).
   */
  maxInputValues: 65_536,
  /** Characters of one text input of a text model; longer texts are refused, never cut before tokenizing. */
  maxTextChars: 20_000,
  /** Vectors per upsert, ids per get/delete. */
  maxBatch: 1000,
  /** UTF-8 bytes of a string id. */
  maxIdBytes: 512,
  /** Serialized (JSON, UTF-8) bytes of one vector's metadata. */
  maxMetadataBytes: 40 * 1024,
  /** Keys at the top level of one vector's metadata. */
  maxMetadataKeys: 64,
  /** Nesting depth of metadata; the metadata object itself is level 1. */
  maxMetadataDepth: 8,
  maxK: 1000,
  defaultK: 10,
  maxEf: 4096,
  /** Queries per multi-vector search. */
  maxQueries: 100,
  /**
   * Nesting depth of any request body (the body itself is level 1). Deep enough for metadata
   * (8 levels inside `vectors[i].metadata`) and nested JSON filters; bounds every recursive walk
   * after the parse (marshalling, validation) so no input can overflow the stack.
   */
  maxJsonDepth: 64,
  /**
   * Serialized (JSON, UTF-8) bytes of one free-form object such as a model version's `params`:
   * the catalog item holding it must stay far below DynamoDB's 400 KB item limit.
   */
  maxFreeFormBytes: 16 * 1024,
  /** Entries of a free-form map (`tags`, `metrics`). */
  maxMapEntries: 64,
  /** hnsw parameter ranges, the same as the engine's (`resolveHnswParams`). */
  hnsw: { m: [2, 128], efConstruction: [8, 4096], efSearch: [1, 4096] },
  /** IVF settings (any engine): forced partition count, and partitions probed per query. */
  ivf: { partitions: [1, 4096], nprobe: [1, 4096] },
} as const;

/** A short description of a received value, for messages. Never echoes long input. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return value.length > 40
        ? `a string (${JSON.stringify(value.slice(0, 40))}…)`
        : `the string ${JSON.stringify(value)}`;
    case 'number':
      return Number.isFinite(value) ? String(value) : `${value} (not finite)`;
    case 'undefined':
      return 'nothing';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

export type Ctx = z.core.$RefinementCtx;

/** Adds a custom issue to `ctx` (the message names the rule; the caller's path is prefixed). */
export function fail(ctx: Ctx, message: string, path: PropertyKey[] = [], params?: Record<string, unknown>): never {
  ctx.addIssue({ code: 'custom', message, path, params, input: undefined });
  return z.NEVER;
}

const LONE_SURROGATE = /\p{Cs}/u;
export const FLOAT32_MAX = 3.4028234663852886e38;

/** A vector id: a string of 1..512 UTF-8 bytes, or a non-negative safe integer (→ its decimal string). */
export const idSchema = z.unknown().transform((value, ctx): string => {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return String(value);
    return fail(ctx, `must be a string or a non-negative safe integer, got ${describe(value)}`);
  }
  if (typeof value !== 'string') {
    return fail(ctx, `must be a string or a non-negative safe integer, got ${describe(value)}`);
  }
  if (value.length === 0) return fail(ctx, 'must not be empty');
  if (LONE_SURROGATE.test(value)) return fail(ctx, 'must be valid Unicode (it contains a lone surrogate)');
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > LIMITS.maxIdBytes) return fail(ctx, `must be at most ${LIMITS.maxIdBytes} UTF-8 bytes, got ${bytes}`);
  return value;
});

/**
 * A raw model input (docs/models.md): 1–`LIMITS.maxInputValues` finite float32 numbers for a tensor model, or
 * a string of 1–`LIMITS.maxTextChars` characters for a text model. Which one the collection takes is the
 * core's check.
 */
export const rawInputSchema = z.unknown().transform((value, ctx): Float32Array | string => {
  if (typeof value === 'string') {
    if (value.length === 0 || value.length > LIMITS.maxTextChars) {
      return fail(ctx, `must be a text of 1–${LIMITS.maxTextChars} characters`);
    }
    if (hasLoneSurrogate(value)) return fail(ctx, 'must be valid Unicode (it contains a lone surrogate)');
    return value;
  }
  if (!Array.isArray(value)) return fail(ctx, `must be an array of numbers or a string, got ${describe(value)}`);
  if (value.length === 0) return fail(ctx, 'must have at least 1 item');
  if (value.length > LIMITS.maxInputValues) {
    return fail(ctx, `must have at most ${LIMITS.maxInputValues} items, got ${value.length}`);
  }
  return toFloat32(value, ctx);
});

/**
 * Vector components: a non-empty array (≤ 4096) of finite numbers that stay finite as
 * float32. Whether the length matches the collection's dimension is the service's check.
 */
export const valuesSchema = z.unknown().transform((value, ctx): Float32Array => {
  if (!Array.isArray(value)) return fail(ctx, `must be an array of numbers, got ${describe(value)}`);
  if (value.length === 0) return fail(ctx, 'must have at least 1 item');
  if (value.length > LIMITS.maxDimension) {
    return fail(ctx, `must have at most ${LIMITS.maxDimension} items, got ${value.length}`);
  }
  return toFloat32(value, ctx);
});

function toFloat32(value: unknown[], ctx: Ctx): Float32Array {
  const out = new Float32Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      return fail(ctx, `must be a finite number, got ${describe(v)}`, [i]);
    }
    if (Math.abs(v) > FLOAT32_MAX) return fail(ctx, `must fit in float32 (|x| ≤ ${FLOAT32_MAX}), got ${v}`, [i]);
    out[i] = v;
  }
  return out;
}

/** Walks a metadata value; returns an error (with a relative path) or undefined. */
function checkJson(
  value: unknown,
  depth: number,
  path: PropertyKey[],
): { message: string; path: PropertyKey[] } | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') {
    return Number.isFinite(value) ? undefined : { message: `must be a finite number, got ${describe(value)}`, path };
  }
  if (typeof value === 'object') {
    if (depth + 1 > LIMITS.maxMetadataDepth) {
      return { message: `nests deeper than ${LIMITS.maxMetadataDepth} levels (metadata nesting limit)`, path };
    }
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const err = checkJson(value[i], depth + 1, [...path, i]);
        if (err) return err;
      }
      return undefined;
    }
    if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
      return { message: 'must be a JSON value', path };
    }
    for (const [k, v] of Object.entries(value)) {
      const err = checkJson(v, depth + 1, [...path, k]);
      if (err) return err;
    }
    return undefined;
  }
  return { message: `must be a JSON value, got ${describe(value)}`, path };
}

/** Metadata: a JSON object, ≤ 64 top-level keys, ≤ 8 levels deep, ≤ 40 KB serialized. */
export const metadataSchema = z.unknown().transform((value, ctx): Metadata => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(ctx, `must be a JSON object, got ${describe(value)}`);
  }
  const keys = Object.keys(value);
  if (keys.length > LIMITS.maxMetadataKeys) {
    return fail(ctx, `must have at most ${LIMITS.maxMetadataKeys} top-level keys, got ${keys.length}`);
  }
  const err = checkJson(value, 0, []);
  if (err) return fail(ctx, err.message, err.path);
  const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
  if (bytes > LIMITS.maxMetadataBytes) {
    return fail(ctx, `must be at most ${LIMITS.maxMetadataBytes} bytes serialized, got ${bytes}`);
  }
  return value as { [key: string]: JsonValue };
});

/**
 * Nesting depth of a parsed JSON value (a scalar is 0, `{}` and `[]` are 1), walked without
 * recursion and stopping as soon as `limit` is passed, so hostile input costs at most its size.
 */
export function jsonDepth(value: unknown, limit = Infinity): number {
  let max = 0;
  const stack: Array<{ v: unknown; d: number }> = [{ v: value, d: 1 }];
  while (stack.length) {
    const { v, d } = stack.pop() as { v: unknown; d: number };
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push({ v: child, d: d + 1 });
    }
  }
  return max;
}

/**
 * True when `s` holds an unpaired UTF-16 surrogate: not valid Unicode, so it cannot be UTF-8 encoded
 * (and `encodeURIComponent`, which signs S3 requests, throws on it).
 */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

/** True when `s` holds an ASCII control character (NUL, newline, DEL, …): never valid in names or URIs. */
export function hasControlCharacter(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(s);
}
