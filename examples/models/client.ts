/**
 * The SDK (`@shoal/client`, clients/typescript) plus the few calls the example needs that it has no
 * method for yet, all through the SDK's own transport (same base URL, `Authorization: Bearer <key>`,
 * retries and typed errors), gathered here so each can be swapped for the SDK method once it exists:
 *
 * - raw `inputs` on upsert and search: the SDK's `upsert`/`search` take `values`/`vector` (its
 *   generated request types already allow `inputs`, its wrappers do not yet);
 * - collection migrations (`/v1/collections/{name}/migrations`): re-embedding a collection with
 *   another model version into a new collection, with an evaluation of the two (docs/models.md).
 */
import { Shoal } from '../../clients/typescript/src/index.js';
import type { SearchHit, SearchResult, UpsertResult } from '../../clients/typescript/src/index.js';

/** A model version, or a model alias resolved when the migration starts. */
export type ModelTarget = { model: string; version: number } | { model: string; alias: string };

export interface StartMigrationInput {
  to: ModelTarget;
  /** The new collection (default `<name>-<model>-v<version>`). */
  target?: string;
  /** A metadata field whose agreement among the k nearest neighbours is reported for both sides. */
  labelField?: string;
  /** Neighbours compared per evaluation query (default 10). */
  k?: number;
  /** Evaluation queries (default 200). */
  sample?: number;
}

export type MigrationState = 'queued' | 'running' | 'evaluating' | 'done' | 'failed' | 'cancelled';
export const FINAL_MIGRATION_STATES: readonly MigrationState[] = ['done', 'failed', 'cancelled'];

export interface Migration {
  id: string;
  source: string;
  target: string;
  from: { model: string; version: number };
  to: { model: string; version: number };
  state: MigrationState;
  createdAt: string;
  updatedAt: string;
  progress: { rowsRead: number; embedded: number; rejected: number };
  rejects: Array<{ id: string; reason: string }>;
  report?: {
    k: number;
    queries: number;
    /** Mean share of the source's top-k ids the target's top-k also has. */
    overlapAtK: number;
    labelAgreement?: { field: string; source: number; target: number };
  };
  error?: unknown;
}

/** One row of raw model inputs (what the collection's embedding function is fed). */
export interface InputRow {
  id: string | number;
  inputs: ArrayLike<number>;
  metadata?: Record<string, unknown>;
}

export interface InputSearch {
  k?: number;
  include?: Array<'metadata' | 'values'>;
  filter?: string | Record<string, unknown>;
  /** Keeps a caller on one arm of an alias's split experiment. */
  stickyKey?: string;
  consistency?: 'strong' | 'eventual';
}

/**
 * Raw inputs as JSON numbers with 4 decimals: pixel data carries no more (8-bit images have 256
 * levels), and the full float32 digits would make a 784-value row ~15 KB instead of ~5 KB — a
 * third of the rows per request under the API's 6 MB body limit.
 */
function inputsJson(values: ArrayLike<number>): number[] {
  return Array.from(values, (x) => Math.round(x * 1e4) / 1e4);
}

const seg = (s: string | number): string => encodeURIComponent(String(s));

export class ExampleShoal extends Shoal {
  /** Upserts rows of raw `inputs` into a collection with an embedding function (≤ 1,000 rows). */
  upsertInputs(collection: string, rows: readonly InputRow[]): Promise<UpsertResult> {
    return this.http.request('POST', `/v1/collections/${seg(collection)}/vectors`, {
      body: {
        vectors: rows.map((r) => ({
          id: r.id,
          inputs: inputsJson(r.inputs),
          ...(r.metadata ? { metadata: r.metadata } : {}),
        })),
      },
      // An upsert by id leaves the same state when repeated.
      idempotent: true,
    });
  }

  /** Searches a collection or alias with raw inputs (≤ 100), embedded by its model: one hit list per input. */
  searchInputs(
    collection: string,
    inputs: readonly ArrayLike<number>[],
    options: InputSearch = {},
  ): Promise<SearchResult<SearchHit[][]>> {
    return this.http.request('POST', `/v1/collections/${seg(collection)}/search`, {
      body: { ...options, inputs: inputs.map(inputsJson) },
      idempotent: true,
    });
  }

  /** One raw input: one hit list, and the `queryId` feedback names when served through an alias. */
  searchInput(collection: string, input: ArrayLike<number>, options: InputSearch = {}): Promise<SearchResult> {
    return this.http.request('POST', `/v1/collections/${seg(collection)}/search`, {
      body: { ...options, input: inputsJson(input) },
      idempotent: true,
    });
  }

  /** Collection migrations (re-embedding with another model version). */
  readonly migrations = {
    /** Starts one (202): the target collection is created, rows are re-embedded in the background. */
    start: async (collection: string, input: StartMigrationInput): Promise<Migration> => {
      const out = await this.http.request<{ migration: Migration }>(
        'POST',
        `/v1/collections/${seg(collection)}/migrations`,
        { body: input },
      );
      return out.migration;
    },
    get: (collection: string, id: string): Promise<Migration> =>
      this.http.request('GET', `/v1/collections/${seg(collection)}/migrations/${seg(id)}`),
    list: async (collection: string): Promise<Migration[]> =>
      (await this.http.request<{ migrations: Migration[] }>('GET', `/v1/collections/${seg(collection)}/migrations`))
        .migrations,
    cancel: (collection: string, id: string): Promise<Migration> =>
      this.http.request('DELETE', `/v1/collections/${seg(collection)}/migrations/${seg(id)}`),
  };
}
