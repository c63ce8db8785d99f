/**
 * Index lines (docs/architecture.md §6.3): a collection serves one line of index versions and may build up
 * to BUILD_POLICY.MAX_CANDIDATES candidate lines with other engine parameters. Candidates
 * are built by the same builder runs from the same writes (they track new data), and serve
 * only when promoted (the collection switches lines) or when an alias pins one of their
 * versions. This module holds the pure parts: settings validation, naming, the views.
 */
import { createHash } from 'node:crypto';
import { resolveHnswParams } from '../engine/hnsw.js';
import { getEngine } from '../engine/registry.js';
import type { EngineParams } from '../engine/types.js';
import { ValidationError } from '../errors.js';
import { MAIN_LINE, type CollectionMeta, type IndexSettings, type Manifest } from '../storage/types.js';
import type { IndexSpec, LineView } from '../service-types.js';

/** Line names: short, URL-safe, distinct from version numbers. */
export const LINE_NAME = /^[a-z][a-z0-9-]{0,39}$/;

export function parseLineName(value: string, field = 'candidate'): string {
  if (!LINE_NAME.test(value)) {
    throw new ValidationError(
      `${field} must match ${LINE_NAME.source} (lowercase letter first, then letters, digits, '-'; ≤ 40 chars)`,
      { field },
    );
  }
  return value;
}

/** Engine settings from the API's flat index spec, validated like a collection's at create. */
export function indexSettings(spec: Partial<IndexSpec>, field = 'index'): IndexSettings {
  const { engine: engineName = 'hnsw', partitions, nprobe, ...rest } = spec;
  const engine = getEngine(engineName);
  if (engine.name === 'flat' && Object.keys(rest).length) {
    throw new ValidationError(`index parameters ${Object.keys(rest).join(', ')} do not apply to the flat engine`, {
      field,
    });
  }
  const params: EngineParams = engine.name === 'hnsw' ? resolveHnswParams(rest as EngineParams) : {};
  // IVF settings ride along with the engine's: candidate lines and tuning treat them alike.
  if (partitions !== undefined) params.partitions = partitions;
  if (nprobe !== undefined) params.nprobe = nprobe;
  return { engine: engine.name, params };
}

export function sameSettings(a: IndexSettings, b: IndexSettings): boolean {
  if (a.engine !== b.engine) return false;
  const keys = new Set([...Object.keys(a.params), ...Object.keys(b.params)]);
  return [...keys].every((k) => a.params[k] === b.params[k]);
}

/**
 * A candidate's default name derives from its settings, so asking twice for the same
 * parameters finds the existing candidate (409) instead of building a duplicate line.
 */
export function defaultLineName(settings: IndexSettings): string {
  const canonical = JSON.stringify([
    settings.engine,
    Object.entries(settings.params).sort(([a], [b]) => a.localeCompare(b)),
  ]);
  return `cand-${createHash('sha256').update(canonical).digest('hex').slice(0, 8)}`;
}

export function servingLine(meta: CollectionMeta): string {
  return meta.index.line ?? MAIN_LINE;
}

export function lineOf(manifest: Manifest): string {
  return manifest.line ?? MAIN_LINE;
}

export function flatSpec(settings: IndexSettings): IndexSpec {
  return { engine: settings.engine, ...settings.params };
}

export function lineView(
  line: string,
  serving: boolean,
  settings: IndexSettings & { createdAt?: string; createdBy?: string },
  head: Manifest | undefined,
  stable: number,
  evaluation?: LineView['evaluation'],
): LineView {
  return {
    line,
    serving,
    index: flatSpec(settings),
    ...(settings.createdAt ? { createdAt: settings.createdAt } : {}),
    ...(settings.createdBy ? { createdBy: settings.createdBy } : {}),
    head: head
      ? {
          version: head.version,
          watermark: head.watermark,
          liveRows: head.stats.liveRows,
          shards: head.shards.length,
          bytes: head.stats.bytes,
          createdAt: head.createdAt,
          parent: head.parent,
        }
      : null,
    lagSeq: Math.max(0, stable - (head?.watermark ?? 0)),
    ...(evaluation ? { evaluation } : {}),
  };
}
