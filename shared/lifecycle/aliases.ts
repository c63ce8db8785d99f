/**
 * Aliases (docs/architecture.md §8.4): named pointers to a collection (optionally a pinned index version) —
 * and, with the same machinery, model aliases. Every move is ONE conditional write on the
 * previous revision (optimistic concurrency; a stale `expectedRevision` is a 409), carries
 * the move record, and is then written to the history (see `storage/dynamo-lifecycle.ts`
 * for why history never shows a move that did not happen and never loses one that did).
 */
import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, QualityGateError } from '../errors.js';
import { logger } from '../log.js';
import type { AliasView } from '../service.js';
import type { Catalog } from '../storage/types.js';
import type { Alias, LifecycleStore, Pointer } from './types.js';
import type { AliasTarget, MoveAction, PointerMove, PointerTarget } from '../service-types.js';
import { currentManifest, manifestFor } from '../collections.js';

export interface PointerDeps {
  store: LifecycleStore;
  now: () => number;
}

export function aliasView(a: Alias): AliasView {
  return {
    name: a.name,
    collection: a.target.collection,
    version: a.target.version ?? null,
    ...(a.target.line !== undefined ? { line: a.target.line } : {}),
    revision: a.revision,
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
    experiment: null,
  };
}

export interface MoveOptions {
  /** The revision the caller saw (0 = must not exist); undefined = whatever is current. */
  expectedRevision?: number;
  action: MoveAction;
  by: string;
  reason?: string;
  forced?: boolean;
}

function conflict(kind: string, name: string, expected: number, current: number): ConflictError {
  const what = kind === 'alias' ? 'alias' : 'model alias';
  return new ConflictError(
    expected === 0
      ? `${what} ${JSON.stringify(name)} already exists (revision ${current})`
      : `${what} ${JSON.stringify(name)} is at revision ${current}, not ${expected}`,
    { field: 'expectedRevision', details: { expectedRevision: expected, currentRevision: current } },
  );
}

/** Creates or moves a pointer with one conditional write, then records the move. */
export async function movePointer<T extends PointerTarget>(
  deps: PointerDeps,
  kind: string,
  name: string,
  to: T,
  opts: MoveOptions,
): Promise<{ pointer: Pointer<T>; created: boolean }> {
  const current = (await deps.store.getPointer(kind, name)) as Pointer<T> | undefined;
  const currentRevision = current?.revision ?? 0;
  if (opts.expectedRevision !== undefined && opts.expectedRevision !== currentRevision) {
    throw current || opts.expectedRevision === 0
      ? conflict(kind, name, opts.expectedRevision, currentRevision)
      : new NotFoundError(`${kind === 'alias' ? 'alias' : 'model alias'} ${JSON.stringify(name)} not found`, {
          field: 'name',
        });
  }
  // Re-record the current revision's move first: if the process died between the previous
  // move and its history write, the history is complete again before it moves on.
  if (current) await deps.store.putHistory(kind, name, current.incarnation, current.lastMove);
  const at = new Date(deps.now()).toISOString();
  const move: PointerMove<T> = {
    revision: currentRevision + 1,
    at,
    by: opts.by,
    action: current ? opts.action : 'create',
    from: current?.target ?? null,
    to,
  };
  if (opts.reason !== undefined) move.reason = opts.reason;
  if (opts.forced) move.forced = true;
  const next: Pointer<T> = {
    name,
    target: to,
    revision: move.revision,
    incarnation: current?.incarnation ?? randomUUID(),
    createdAt: current?.createdAt ?? at,
    updatedAt: at,
    lastMove: move,
  };
  if (!(await deps.store.writePointer(kind, next, currentRevision))) {
    const now = await deps.store.getPointer(kind, name);
    throw conflict(kind, name, currentRevision, now?.revision ?? 0);
  }
  try {
    await deps.store.putHistory(kind, name, next.incarnation, move);
  } catch (err) {
    // The move happened; its record is on the alias item (`lastMove`) and is re-written by the next move.
    logger.warn('recording a move failed (kept on the alias item)', {
      [kind]: name,
      revision: move.revision,
      error: err as Error,
    });
  }
  return { pointer: next, created: !current };
}

/** Moves newest first, including the current one even if its history item is not written yet. */
export async function pointerHistory(deps: PointerDeps, kind: string, name: string): Promise<PointerMove[]> {
  const p = await deps.store.getPointer(kind, name);
  if (!p)
    throw new NotFoundError(`${kind === 'alias' ? 'alias' : 'model alias'} ${JSON.stringify(name)} not found`, {
      field: 'name',
    });
  const moves = await deps.store.listHistory(kind, name, p.incarnation, p.revision);
  if (moves[0]?.revision !== p.revision) moves.unshift(p.lastMove);
  return moves;
}

/**
 * The quality gate of an alias target: when the collection sets `minRecall`, the version the
 * alias would serve (the pinned one, else the latest) must have an evaluation with recall ≥
 * it. Returns whether the gate was overridden (`force`); throws QualityGateError otherwise.
 * Also checks that the target exists (collection, and pinned version of its generation).
 */
export async function checkAliasTarget(
  catalog: Catalog,
  store: LifecycleStore,
  target: AliasTarget,
  force: boolean,
): Promise<{ forced: boolean }> {
  const meta = await catalog.getCollection(target.collection).catch((err: unknown) => {
    if (err instanceof NotFoundError)
      throw new NotFoundError(`collection ${JSON.stringify(target.collection)} not found`, { field: 'collection' });
    throw err;
  });
  const manifest =
    target.version !== undefined || target.line !== undefined
      ? await manifestFor(catalog, meta, target.version, target.line)
      : await currentManifest(catalog, meta);
  if (meta.minRecall === undefined) return { forced: false };
  const version = manifest?.version ?? 0;
  const ev = version > 0 ? await store.getEvaluation(meta.name, version) : undefined;
  const evaluation = ev && ev.generation === meta.generation ? ev : undefined;
  return qualityGate({
    subject: `version ${version} of ${JSON.stringify(meta.name)}`,
    field: 'collection',
    collection: meta.name,
    version,
    minRecall: meta.minRecall,
    evaluation,
    force,
  });
}

/**
 * The quality-gate decision, shared by alias moves and candidate promotions: passes when the
 * evaluation reaches `minRecall`, is overridden by `force` (reported as forced), else throws
 * QualityGateError with the numbers.
 */
export function qualityGate(g: {
  subject: string;
  field: string;
  collection: string;
  version: number;
  minRecall: number;
  evaluation?: { recall: number; k: number; version?: number };
  force: boolean;
  extra?: Record<string, unknown>;
}): { forced: boolean } {
  const { evaluation: ev } = g;
  if (ev && ev.recall >= g.minRecall) return { forced: false };
  if (g.force) return { forced: true };
  const details = {
    collection: g.collection,
    ...g.extra,
    version: ev?.version ?? g.version,
    minRecall: g.minRecall,
    recall: ev?.recall ?? null,
    k: ev?.k ?? null,
    evaluated: ev !== undefined,
  };
  throw new QualityGateError(
    ev
      ? `${g.subject} has recall@${ev.k} ${ev.recall.toFixed(4)}, below the collection's minRecall ${g.minRecall} (send force: true to override)`
      : `${g.subject} has not been evaluated; the collection requires minRecall ${g.minRecall} (evaluate version ${g.version}, or send force: true)`,
    { field: g.field, details },
  );
}
