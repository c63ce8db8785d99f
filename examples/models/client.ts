/**
 * The SDK (`@shoal/client`, clients/typescript) as the example uses it: collections with an embedding
 * function take raw `inputs` (`upsertInputs`, `searchByInput`, `searchManyByInput`) and migrate to another
 * model version (`collection(name).migrations`). Two small conveniences on top, kept here so the loop reads
 * as the steps it takes.
 */
import { Shoal } from '../../clients/typescript/src/index.js';
import type {
  CreateMigrationInput,
  Metadata,
  Migration,
  MigrationState,
  SearchHit,
  SearchResult,
  UpsertResult,
} from '../../clients/typescript/src/index.js';

export type { Migration, MigrationState };
export type StartMigrationInput = CreateMigrationInput;
export const FINAL_MIGRATION_STATES: readonly MigrationState[] = ['done', 'failed', 'cancelled'];

/** One row of raw model inputs (what the collection's embedding function is fed). */
export interface InputRow {
  id: string | number;
  inputs: ArrayLike<number>;
  metadata?: Metadata;
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
function rounded(values: ArrayLike<number>): number[] {
  return Array.from(values, (x) => Math.round(x * 1e4) / 1e4);
}

export class ExampleShoal extends Shoal {
  /** Upserts rows of raw `inputs` into a collection with an embedding function (≤ 1,000 rows). */
  upsertInputs(collection: string, rows: readonly InputRow[]): Promise<UpsertResult> {
    return this.collection(collection).upsertInputs(rows.map((r) => ({ ...r, inputs: rounded(r.inputs) })));
  }

  /** Searches a collection or alias with raw inputs (≤ 100), embedded by its model: one hit list per input. */
  searchInputs(
    collection: string,
    inputs: readonly ArrayLike<number>[],
    options: InputSearch = {},
  ): Promise<SearchResult<SearchHit[][]>> {
    return this.collection(collection).searchManyByInput({ ...options, inputs: inputs.map(rounded) });
  }

  /** One raw input: one hit list, and the `queryId` feedback names when served through an alias. */
  searchInput(collection: string, input: ArrayLike<number>, options: InputSearch = {}): Promise<SearchResult> {
    return this.collection(collection).searchByInput({ ...options, input: rounded(input) });
  }

  /** Collection migrations (re-embedding with another model version), by source collection name. */
  readonly migrations = {
    start: (collection: string, input: StartMigrationInput): Promise<Migration> =>
      this.collection(collection).migrations.start(input),
    get: (collection: string, id: string): Promise<Migration> => this.collection(collection).migrations.get(id),
    list: (collection: string): Promise<Migration[]> => this.collection(collection).migrations.list(),
    cancel: (collection: string, id: string): Promise<Migration> => this.collection(collection).migrations.cancel(id),
  };
}
