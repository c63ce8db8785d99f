/**
 * Milvus collection schemas ↔ Shoal collections: the create request (quick and schema forms) becomes a
 * `CreateCollectionInput` plus the `MilvusSchema` kept beside it; rows (`{pk, vector, scalars…}`) become
 * Shoal vectors and back. Pure functions, unit-tested on their own (test/unit/milvus-schema.test.ts).
 *
 * Mapping (docs/milvus.md): the primary key is the Shoal id (Int64 as its decimal string) and is also
 * kept in the metadata under its field name, so that Milvus filters on it (`id > 10`, `id in [1, 2]`)
 * work as metadata filters; the one FloatVector field is the vector; every scalar field, and with the
 * dynamic field enabled every other key of a row, is metadata.
 */
import { ValidationError } from '../../errors.js';
import type { CollectionInfo, CreateCollectionInput } from '../../service.js';
import type { JsonValue, Metadata, Metric } from '../../types.js';

export const SCALAR_TYPES = ['Bool', 'Int8', 'Int16', 'Int32', 'Int64', 'Float', 'Double', 'VarChar', 'JSON', 'Array'];
export type ScalarType =
  | 'Bool'
  | 'Int8'
  | 'Int16'
  | 'Int32'
  | 'Int64'
  | 'Float'
  | 'Double'
  | 'VarChar'
  | 'JSON'
  | 'Array';
export type PkType = 'Int64' | 'VarChar';
export type MilvusMetric = 'L2' | 'IP' | 'COSINE';

export interface ScalarField {
  name: string;
  type: ScalarType;
  nullable?: boolean;
  defaultValue?: JsonValue;
  /** `max_length` (VarChar), `element_type` / `max_capacity` (Array), as given. */
  params?: Record<string, string>;
}

/** What a Milvus client knows about a collection and Shoal does not: names and types of its fields. */
export interface MilvusSchema {
  pk: { name: string; type: PkType; autoId: boolean; maxLength?: number };
  vector: { name: string };
  scalars: ScalarField[];
  dynamic: boolean;
  description?: string;
}

const INT_RANGES: Partial<Record<ScalarType, [number, number]>> = {
  Int8: [-128, 127],
  Int16: [-32768, 32767],
  Int32: [-2147483648, 2147483647],
  Int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

const METRICS: Record<MilvusMetric, Metric> = { L2: 'l2', IP: 'ip', COSINE: 'cosine' };

/** Milvus metric name (any case) → Shoal's. */
export function toShoalMetric(value: unknown, field = 'metricType'): Metric {
  const key = typeof value === 'string' ? value.toUpperCase() : '';
  const metric = METRICS[key as MilvusMetric];
  if (!metric) {
    throw new ValidationError(`${field} must be one of L2, IP, COSINE (Shoal has no ${String(value)} metric)`, {
      field,
    });
  }
  return metric;
}

export function toMilvusMetric(metric: Metric): MilvusMetric {
  return metric === 'l2' ? 'L2' : metric === 'ip' ? 'IP' : 'COSINE';
}

/**
 * Shoal's score as Milvus's `distance`. They already agree: Shoal scores l2 as the squared Euclidean
 * distance (smaller is closer) and ip / cosine as the similarity (larger is closer), which is what Milvus
 * reports for L2, IP and COSINE. Kept as a function so that the mapping is stated, and tested, once.
 */
export function toMilvusDistance(metric: Metric, score: number): number {
  void metric;
  return score;
}

/** The schema Shoal assumes for a collection made without this API (v1): `id` VarChar, `vector`, dynamic. */
export function defaultSchema(): MilvusSchema {
  return { pk: { name: 'id', type: 'VarChar', autoId: false }, vector: { name: 'vector' }, scalars: [], dynamic: true };
}

function record(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationError(`${field} must be an object`, { field });
  }
  return value as Record<string, unknown>;
}

function fieldName(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,254}$/.test(value)) {
    throw new ValidationError(`${field} must be a field name (a letter or _, then letters, digits, _)`, { field });
  }
  return value;
}

function positiveInt(value: unknown, field: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new ValidationError(`${field} must be a positive integer`, { field });
  }
  return n;
}

export interface CreatePlan {
  input: CreateCollectionInput;
  schema: MilvusSchema;
}

/**
 * A Milvus create request → the Shoal collection and the schema to keep. Quick form: `dimension`,
 * `metricType`, `idType`, `autoID`, `primaryFieldName`, `vectorFieldName`. Schema form: `schema.fields`
 * with exactly one primary key (Int64 or VarChar) and one FloatVector (`elementTypeParams.dim`), the
 * metric from `indexParams` on the vector field (else `metricType`, else COSINE, Milvus's default).
 */
export function planCreate(body: Record<string, unknown>, name: string): CreatePlan {
  const schemaBody = body.schema === undefined ? undefined : record(body.schema, 'schema');
  const fields = schemaBody?.fields;
  const indexParams = body.indexParams === undefined ? [] : body.indexParams;
  if (!Array.isArray(indexParams)) throw new ValidationError('indexParams must be a list', { field: 'indexParams' });
  if (fields === undefined || (Array.isArray(fields) && fields.length === 0)) {
    const dimension = positiveInt(body.dimension, 'dimension');
    const idType = body.idType === undefined ? 'Int64' : body.idType;
    if (idType !== 'Int64' && idType !== 'VarChar') {
      throw new ValidationError('idType must be Int64 or VarChar', { field: 'idType' });
    }
    const pkName = fieldName(body.primaryFieldName ?? 'id', 'primaryFieldName');
    const vectorName = fieldName(body.vectorFieldName ?? 'vector', 'vectorFieldName');
    if (pkName === vectorName) {
      throw new ValidationError('primaryFieldName and vectorFieldName must differ', { field: 'vectorFieldName' });
    }
    const params = record(body.params, 'params');
    const maxLength = params.max_length === undefined ? undefined : positiveInt(params.max_length, 'max_length');
    return {
      input: { name, dimension, metric: toShoalMetric(body.metricType ?? 'COSINE') },
      schema: {
        pk: {
          name: pkName,
          type: idType,
          autoId: body.autoID === true,
          ...(idType === 'VarChar' ? { maxLength: maxLength ?? 512 } : {}),
        },
        vector: { name: vectorName },
        scalars: [],
        dynamic: params.enableDynamicField !== false,
      },
    };
  }
  if (!Array.isArray(fields)) throw new ValidationError('schema.fields must be a list', { field: 'schema.fields' });
  let pk: MilvusSchema['pk'] | undefined;
  let vector: { name: string; dim: number } | undefined;
  const scalars: ScalarField[] = [];
  const seen = new Set<string>();
  fields.forEach((raw, i) => {
    const at = `schema.fields[${i}]`;
    const f = record(raw, at);
    const name = fieldName(f.fieldName, `${at}.fieldName`);
    if (seen.has(name)) throw new ValidationError(`field ${name} is declared twice`, { field: `${at}.fieldName` });
    seen.add(name);
    const type = f.dataType;
    const params = record(f.elementTypeParams, `${at}.elementTypeParams`);
    if (f.isPrimary === true) {
      if (pk) throw new ValidationError('the schema has more than one primary key', { field: at });
      if (type !== 'Int64' && type !== 'VarChar') {
        throw new ValidationError('the primary key must be Int64 or VarChar', { field: `${at}.dataType` });
      }
      const autoId = schemaBody?.autoId === true || schemaBody?.autoID === true || f.autoID === true;
      pk = { name, type, autoId };
      if (type === 'VarChar') {
        pk.maxLength = params.max_length === undefined ? 512 : positiveInt(params.max_length, `${at}.max_length`);
      }
      return;
    }
    if (type === 'FloatVector') {
      if (vector) {
        throw new ValidationError('Shoal collections hold exactly one vector field', { field: `${at}.dataType` });
      }
      vector = { name, dim: positiveInt(params.dim, `${at}.elementTypeParams.dim`) };
      return;
    }
    if (typeof type !== 'string' || !SCALAR_TYPES.includes(type)) {
      throw new ValidationError(
        `${at}.dataType ${JSON.stringify(type)} is not supported; use FloatVector or one of ${SCALAR_TYPES.join(', ')}`,
        { field: `${at}.dataType` },
      );
    }
    const scalar: ScalarField = { name, type: type as ScalarType };
    if (f.nullable === true) scalar.nullable = true;
    if (f.defaultValue !== undefined && f.defaultValue !== null) scalar.defaultValue = f.defaultValue as JsonValue;
    const kept: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) kept[k] = String(v);
    if (Object.keys(kept).length) scalar.params = kept;
    scalars.push(scalar);
  });
  if (!pk) throw new ValidationError('the schema needs a primary key field (isPrimary: true)', { field: 'schema' });
  if (!vector) throw new ValidationError('the schema needs one FloatVector field', { field: 'schema' });
  let metric: Metric = toShoalMetric(body.metricType ?? 'COSINE');
  indexParams.forEach((raw, i) => {
    const p = record(raw, `indexParams[${i}]`);
    if (p.fieldName !== vector!.name) {
      throw new ValidationError(`indexParams[${i}]: Shoal indexes only the vector field ${vector!.name}`, {
        field: `indexParams[${i}].fieldName`,
      });
    }
    if (p.metricType !== undefined) metric = toShoalMetric(p.metricType, `indexParams[${i}].metricType`);
  });
  const dynamic = schemaBody?.enableDynamicField === true || schemaBody?.enabledDynamicField === true;
  const description = typeof schemaBody?.description === 'string' ? schemaBody.description : undefined;
  return {
    input: { name, dimension: vector.dim, metric },
    schema: {
      pk,
      vector: { name: vector.name },
      scalars,
      dynamic,
      ...(description !== undefined ? { description } : {}),
    },
  };
}

/** A primary-key value from a request → the Shoal id. Int64: a safe integer, or its decimal string. */
export function toShoalId(schema: MilvusSchema, value: unknown, field: string): string {
  if (schema.pk.type === 'Int64') {
    const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
      throw new ValidationError(`${field} must be an Int64 primary key within ±2^53 (got ${JSON.stringify(value)})`, {
        field,
      });
    }
    return String(n);
  }
  if (typeof value !== 'string' || value.length === 0) {
    throw new ValidationError(`${field} must be a non-empty VarChar primary key`, { field });
  }
  if (schema.pk.maxLength !== undefined && value.length > schema.pk.maxLength) {
    throw new ValidationError(`${field} is longer than max_length ${schema.pk.maxLength}`, { field });
  }
  return value;
}

/**
 * A Shoal id → the primary key as Milvus answers it: Int64 as a number, or as its decimal string when the
 * client sent `Accept-Type-Allow-Int64: false` (the Node SDK's default: JSON numbers lose int64 precision).
 */
export function fromShoalId(schema: MilvusSchema, id: string, int64AsNumber: boolean): string | number {
  if (schema.pk.type !== 'Int64' || !int64AsNumber) return id;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : id;
}

function checkScalar(f: ScalarField, value: unknown, field: string): JsonValue {
  const bad = (what: string): never => {
    throw new ValidationError(`${field} must be ${what} (field ${f.name} is ${f.type})`, { field });
  };
  switch (f.type) {
    case 'Bool':
      return typeof value === 'boolean' ? value : bad('true or false');
    case 'Int8':
    case 'Int16':
    case 'Int32':
    case 'Int64': {
      const [lo, hi] = INT_RANGES[f.type]!;
      const n = f.type === 'Int64' && typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
      return typeof n === 'number' && Number.isInteger(n) && n >= lo && n <= hi
        ? n
        : bad(`an integer in [${lo}, ${hi}]`);
    }
    case 'Float':
    case 'Double':
      return typeof value === 'number' && Number.isFinite(value) ? value : bad('a finite number');
    case 'VarChar': {
      if (typeof value !== 'string') return bad('a string');
      const max = f.params?.max_length !== undefined ? Number(f.params.max_length) : undefined;
      return max !== undefined && value.length > max ? bad(`at most ${max} characters`) : value;
    }
    case 'Array':
      return Array.isArray(value) ? (value as JsonValue[]) : bad('a list');
    case 'JSON':
      return value as JsonValue;
  }
}

export interface RowInput {
  id: string;
  values: unknown;
  metadata: Metadata;
}

/**
 * A Milvus row → Shoal's `{id, values, metadata}` (values are validated later by the same schema as the
 * v1 upsert). `newId` supplies ids for autoID collections.
 */
export function rowToVector(schema: MilvusSchema, raw: unknown, at: string, newId?: () => string): RowInput {
  const row = record(raw, at);
  const metadata: Metadata = {};
  let id: string;
  if (schema.pk.autoId) {
    if (row[schema.pk.name] !== undefined) {
      throw new ValidationError(`${at}.${schema.pk.name}: the primary key is generated (autoID); leave it out`, {
        field: `${at}.${schema.pk.name}`,
      });
    }
    if (!newId) throw new ValidationError('an autoID collection cannot be upserted', { field: at });
    id = newId();
  } else {
    id = toShoalId(schema, row[schema.pk.name], `${at}.${schema.pk.name}`);
  }
  metadata[schema.pk.name] = schema.pk.type === 'Int64' ? Number(id) : id;
  if (row[schema.vector.name] === undefined) {
    throw new ValidationError(`${at}.${schema.vector.name} (the vector field) is missing`, {
      field: `${at}.${schema.vector.name}`,
    });
  }
  const declared = new Set([schema.pk.name, schema.vector.name]);
  for (const f of schema.scalars) {
    declared.add(f.name);
    const value = row[f.name];
    if (value === undefined || value === null) {
      if (f.defaultValue !== undefined) metadata[f.name] = f.defaultValue;
      else if (!f.nullable) {
        throw new ValidationError(`${at}.${f.name} is missing (field ${f.name} is not nullable)`, {
          field: `${at}.${f.name}`,
        });
      }
      continue;
    }
    metadata[f.name] = checkScalar(f, value, `${at}.${f.name}`);
  }
  for (const [key, value] of Object.entries(row)) {
    if (declared.has(key)) continue;
    if (!schema.dynamic) {
      throw new ValidationError(`${at}.${key} is not a field of the collection (the dynamic field is disabled)`, {
        field: `${at}.${key}`,
      });
    }
    metadata[key] = value as JsonValue;
  }
  return { id, values: row[schema.vector.name], metadata };
}

/**
 * Which fields an answer carries: `outputFields` names (`*` = all, vector included), always the primary
 * key. `vector` says whether the vector values are needed.
 */
export function selectFields(schema: MilvusSchema, outputFields: unknown): { all: boolean; names: Set<string> } {
  if (outputFields === undefined || outputFields === null) return { all: false, names: new Set() };
  if (!Array.isArray(outputFields) || outputFields.some((f) => typeof f !== 'string')) {
    throw new ValidationError('outputFields must be a list of field names', { field: 'outputFields' });
  }
  const names = new Set(outputFields as string[]);
  const all = names.delete('*');
  if (!schema.dynamic) {
    const known = new Set([schema.pk.name, schema.vector.name, ...schema.scalars.map((f) => f.name)]);
    for (const n of names) {
      if (!known.has(n)) throw new ValidationError(`outputFields: ${n} is not a field`, { field: 'outputFields' });
    }
  }
  return { all, names };
}

/** A stored vector → a Milvus row with the selected fields; Int64 scalars follow the pk's int64 rule. */
export function vectorToRow(
  schema: MilvusSchema,
  v: { id: string; values?: number[]; metadata?: Metadata },
  select: { all: boolean; names: Set<string> },
  int64AsNumber: boolean,
): Record<string, unknown> {
  const row: Record<string, unknown> = { [schema.pk.name]: fromShoalId(schema, v.id, int64AsNumber) };
  const int64 = new Set(schema.scalars.filter((f) => f.type === 'Int64').map((f) => f.name));
  for (const [key, value] of Object.entries(v.metadata ?? {})) {
    if (key === schema.pk.name || !(select.all || select.names.has(key))) continue;
    row[key] = int64.has(key) && !int64AsNumber && typeof value === 'number' ? String(value) : value;
  }
  if ((select.all || select.names.has(schema.vector.name)) && v.values) row[schema.vector.name] = v.values;
  return row;
}

/** `describe_collection`'s `data`, shaped as Milvus 2.4+ answers it. */
export function describeCollection(
  schema: MilvusSchema,
  info: CollectionInfo,
  aliases: string[],
): Record<string, unknown> {
  const fields: Record<string, unknown>[] = [
    {
      name: schema.pk.name,
      type: schema.pk.type,
      primaryKey: true,
      autoId: schema.pk.autoId,
      partitionKey: false,
      clusteringKey: false,
      nullable: false,
      description: '',
      ...(schema.pk.maxLength !== undefined
        ? { params: [{ key: 'max_length', value: String(schema.pk.maxLength) }] }
        : {}),
    },
    {
      name: schema.vector.name,
      type: 'FloatVector',
      primaryKey: false,
      autoId: false,
      partitionKey: false,
      clusteringKey: false,
      nullable: false,
      description: '',
      params: [{ key: 'dim', value: String(info.dimension) }],
    },
    ...schema.scalars.map((f) => ({
      name: f.name,
      type: f.type,
      primaryKey: false,
      autoId: false,
      partitionKey: false,
      clusteringKey: false,
      nullable: f.nullable === true,
      description: '',
      ...(f.defaultValue !== undefined ? { defaultValue: f.defaultValue } : {}),
      ...(f.params ? { params: Object.entries(f.params).map(([key, value]) => ({ key, value })) } : {}),
    })),
  ];
  return {
    collectionName: info.name,
    description: schema.description ?? '',
    autoId: schema.pk.autoId,
    fields,
    functions: [],
    aliases,
    indexes: [
      { fieldName: schema.vector.name, indexName: schema.vector.name, metricType: toMilvusMetric(info.metric) },
    ],
    load: 'LoadStateLoaded',
    shardsNum: 1,
    partitionsNum: 1,
    consistencyLevel: 'Strong',
    enableDynamicField: schema.dynamic,
    properties: [],
  };
}

/** `{key: value}` form of a stored schema, validated when read back (a hand-edited object is refused). */
export function parseStoredSchema(value: unknown): MilvusSchema | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const s = value as Partial<MilvusSchema>;
  if (
    typeof s.pk?.name !== 'string' ||
    (s.pk.type !== 'Int64' && s.pk.type !== 'VarChar') ||
    typeof s.vector?.name !== 'string' ||
    !Array.isArray(s.scalars) ||
    typeof s.dynamic !== 'boolean'
  ) {
    return undefined;
  }
  return s as MilvusSchema;
}
