/**
 * Where the Milvus schema of a collection is kept: one small immutable S3 object per incarnation of the
 * collection (`milvusSchemaKey(name, createdAt)`, shared/storage/keys.ts). Keyed by the creation time, a
 * collection dropped and re-created under the same name (through either API) never reads the old
 * schema, and the object is written once, which is all `ObjectStore.putImmutable` offers.
 */
import { NotFoundError } from '../../errors.js';
import type { ObjectStore } from '../../storage/types.js';
import { milvusSchemaKey } from '../../storage/keys.js';
import { parseStoredSchema, type MilvusSchema } from './schema.js';

export type SchemaObjects = Pick<ObjectStore, 'putImmutable' | 'get' | 'delete'>;

export interface SchemaStore {
  put(collection: string, createdAt: string, schema: MilvusSchema): Promise<void>;
  /** Undefined when the collection was made without this API (or its object is unreadable). */
  get(collection: string, createdAt: string): Promise<MilvusSchema | undefined>;
  delete(collection: string, createdAt: string): Promise<void>;
}

function keyOf(collection: string, createdAt: string): string {
  return milvusSchemaKey(collection, createdAt.replace(/[^0-9A-Za-z]/g, ''));
}

export function objectSchemaStore(objects: SchemaObjects): SchemaStore {
  return {
    async put(collection, createdAt, schema) {
      await objects.putImmutable(keyOf(collection, createdAt), new TextEncoder().encode(JSON.stringify(schema)));
    },
    async get(collection, createdAt) {
      let bytes: Uint8Array;
      try {
        bytes = await objects.get(keyOf(collection, createdAt));
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
      try {
        return parseStoredSchema(JSON.parse(new TextDecoder().decode(bytes)));
      } catch {
        return undefined;
      }
    },
    async delete(collection, createdAt) {
      await objects.delete([keyOf(collection, createdAt)]);
    },
  };
}

/** For an API built without object storage (unit tests of the router): the schema lives in this process. */
export function memorySchemaStore(): SchemaStore {
  const schemas = new Map<string, MilvusSchema>();
  return {
    async put(collection, createdAt, schema) {
      schemas.set(keyOf(collection, createdAt), schema);
    },
    async get(collection, createdAt) {
      return schemas.get(keyOf(collection, createdAt));
    },
    async delete(collection, createdAt) {
      schemas.delete(keyOf(collection, createdAt));
    },
  };
}
