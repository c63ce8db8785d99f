/**
 * Reading a collection's index versions, shared by search, the builder's callers and the
 * lifecycle (aliases, evaluation): which manifest serves, which one a pin or a line selects,
 * and the efSearch a search uses by default. Below all of them, so none imports another for it.
 */
import { NotFoundError } from './errors.js';
import { MAIN_LINE, type Catalog, type CollectionMeta, type Manifest } from './storage/types.js';

/** The serving line's head: what unpinned searches read. */
export async function currentManifest(catalog: Catalog, meta: CollectionMeta): Promise<Manifest | undefined> {
  const line = meta.index.line ?? MAIN_LINE;
  // Every search reads this. The meta item names the head (docs/architecture.md §7.6): a cached
  // manifest costs no read at all, an uncached one a GetItem.
  const head = meta.heads?.[line];
  if (head !== undefined) {
    const m = await catalog.manifestAt(meta.name, meta.generation, head);
    if (m) return m;
  }
  // No pointer yet (never built since pointers exist): one Query. Each builder run commits one version
  // per line, so the serving head is among the newest (1 + candidates) items.
  const lines = 1 + Object.keys(meta.candidates ?? {}).length;
  const m = await catalog.latestManifest(meta.name, line, lines);
  return m && m.generation === meta.generation ? m : undefined;
}

/**
 * The manifest a search reads: the pinned `version` when an alias pins one (it must belong
 * to this generation of the collection), else the latest.
 */
export async function manifestFor(
  catalog: Catalog,
  meta: CollectionMeta,
  version?: number,
  line?: string,
): Promise<Manifest | undefined> {
  if (line !== undefined && line !== (meta.index.line ?? MAIN_LINE)) {
    if (!meta.candidates?.[line]) {
      throw new NotFoundError(
        `index line ${JSON.stringify(line)} of ${JSON.stringify(meta.name)} not found (deleted, or never created)`,
        { field: 'line' },
      );
    }
    const pointed = meta.heads?.[line];
    const cached = pointed === undefined ? undefined : await catalog.manifestAt(meta.name, meta.generation, pointed);
    if (cached) return cached;
    const head = await catalog.latestManifest(meta.name, line);
    return head && head.generation === meta.generation ? head : undefined;
  }
  if (version === undefined) return currentManifest(catalog, meta);
  if (version === 0) return undefined;
  // A pinned version: immutable, so served from the cache after its first read.
  const m = await catalog.manifestAt(meta.name, meta.generation, version);
  if (!m) {
    throw new NotFoundError(`index version ${version} of ${JSON.stringify(meta.name)} not found`, { field: 'version' });
  }
  return m;
}

/**
 * The efSearch a search uses without `ef`: the collection's (auto-tuning may have changed it)
 * for the serving line, else the candidate line's own, else what the version was built with.
 */
export function defaultEf(meta: CollectionMeta, manifest: Manifest | undefined): number | undefined {
  if (!manifest || manifest.engine !== 'hnsw') return undefined;
  const line = manifest.line ?? MAIN_LINE;
  if (line === (meta.index.line ?? MAIN_LINE)) return meta.index.params.efSearch ?? manifest.params.efSearch;
  return meta.candidates?.[line]?.params.efSearch ?? manifest.params.efSearch;
}
