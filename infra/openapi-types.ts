/**
 * The TypeScript SDK's API types, converted from the OpenAPI document (`npm run openapi` writes them to
 * clients/typescript/src/api-types.gen.ts). The converter covers the JSON Schema that zod's 2020-12 output
 * and `describeOpaque` (shared/api/openapi.ts) produce, not JSON Schema at large: a keyword it does not know
 * widens to `unknown` rather than inventing a narrower type.
 */

type Schema = { [key: string]: unknown } | boolean;
type Doc = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
};
type Operation = {
  operationId: string;
  summary?: string;
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
};

const REF = '#/components/schemas/';
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A union at the top level (not inside braces or brackets) needs parentheses before `[]`. */
function isUnion(type: string): boolean {
  let depth = 0;
  for (let i = 0; i < type.length; i++) {
    const c = type[i];
    if ('{[(<'.includes(c)) depth++;
    else if ('}])>'.includes(c)) depth--;
    else if (depth === 0 && type.startsWith(' | ', i)) return true;
  }
  return false;
}

const union = (types: string[]): string => {
  const unique = [...new Set(types)];
  return unique.includes('unknown') ? 'unknown' : unique.join(' | ');
};

/** A JSDoc block (description and default) for a schema, wrapped so no line passes 120 columns once nested. */
function docComment(schema: Schema, indent: string, lead?: string): string {
  if (typeof schema !== 'object') return '';
  const parts = [lead, typeof schema.description === 'string' ? schema.description : undefined];
  if ('default' in schema) parts.push(`@default ${JSON.stringify(schema.default)}`);
  const words = parts.filter(Boolean).join(' ').split(/\s+/).filter(Boolean);
  if (words.length === 0) return '';
  const lines: string[] = [];
  for (const word of words) {
    if (lines.length && lines[lines.length - 1].length + word.length < 90) lines[lines.length - 1] += ` ${word}`;
    else lines.push(word);
  }
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}\n`).join('')}${indent} */\n`;
}

/** The TypeScript type of `schema`; `indent` is where its braces would open. */
export function tsType(schema: Schema, indent = ''): string {
  if (schema === false) return 'never';
  if (schema === true) return 'unknown';
  const nullable = schema.nullable === true ? ' | null' : '';
  if (typeof schema.$ref === 'string') {
    if (!schema.$ref.startsWith(REF)) throw new Error(`unsupported $ref ${schema.$ref}`);
    return schema.$ref.slice(REF.length) + nullable;
  }
  if ('const' in schema) return JSON.stringify(schema.const) + nullable;
  if (Array.isArray(schema.enum)) return union(schema.enum.map((v) => JSON.stringify(v))) + nullable;
  const choices = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (choices) return union(choices.map((c) => tsType(c, indent))) + nullable;
  if (Array.isArray(schema.type)) {
    return union(schema.type.map((type: string) => tsType({ ...schema, type }, indent))) + nullable;
  }
  return baseType(schema, indent) + nullable;
}

function baseType(schema: { [key: string]: unknown }, indent: string): string {
  switch (schema.type) {
    case 'string':
      return 'string';
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array': {
      if (Array.isArray(schema.prefixItems)) {
        return `[${(schema.prefixItems as Schema[]).map((s) => tsType(s, indent)).join(', ')}]`;
      }
      const item = schema.items === undefined ? 'unknown' : tsType(schema.items as Schema, indent);
      return isUnion(item) ? `(${item})[]` : `${item}[]`;
    }
    case 'object':
    case undefined:
      if (schema.type === undefined && !schema.properties && !schema.additionalProperties) return 'unknown';
      return objectType(schema, indent);
    default:
      return 'unknown';
  }
}

function objectType(schema: { [key: string]: unknown }, indent: string): string {
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const required = new Set((schema.required ?? []) as string[]);
  const extra = schema.additionalProperties as Schema | undefined;
  const extraType = extra === undefined || extra === false ? undefined : tsType(extra, indent);
  const names = Object.keys(properties);
  if (names.length === 0) return `Record<string, ${extraType ?? 'unknown'}>`;
  const inner = `${indent}  `;
  const lines = names.map((name) => {
    const key = IDENTIFIER.test(name) ? name : JSON.stringify(name);
    const optional = required.has(name) ? '' : '?';
    return `${docComment(properties[name], inner)}${inner}${key}${optional}: ${tsType(properties[name], inner)};\n`;
  });
  if (extraType !== undefined) {
    // An index signature must admit every named property's type too.
    const all = [extraType, ...names.map((n) => tsType(properties[n], inner))];
    if (names.some((n) => !required.has(n))) all.push('undefined');
    lines.push(`${inner}[key: string]: ${union(all)};\n`);
  }
  return `{\n${lines.join('')}${indent}}`;
}

const jsonSchema = (content: Record<string, { schema: Schema }> | undefined): Schema | undefined =>
  content?.['application/json']?.schema;

/** The module's source (unformatted): one type per component schema, then the `Operations` map. */
export function apiTypesSource(doc: Doc, header: string): string {
  const out = [header];
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    out.push(`${docComment(schema, '')}export type ${name} = ${tsType(schema)};\n`);
  }
  const operations: string[] = [];
  for (const ops of Object.values(doc.paths)) {
    for (const op of Object.values(ops)) {
      const body = jsonSchema(op.requestBody?.content);
      const success = Object.entries(op.responses)
        .filter(([status]) => /^2\d\d$/.test(status))
        .map(([, r]) => jsonSchema(r.content));
      const response = union(success.map((s) => (s === undefined ? 'undefined' : tsType(s, '  '))));
      operations.push(
        `${docComment({}, '  ', op.summary)}  ${op.operationId}: {\n` +
          `    body: ${body === undefined ? 'never' : tsType(body, '    ')};\n` +
          `    response: ${response || 'never'};\n  };\n`,
      );
    }
  }
  out.push(
    '/** Every operation by its operationId: its JSON request body (`never`: none) and its 2xx response body. */\n' +
      `export type Operations = {\n${operations.join('')}};\n`,
  );
  return out.join('\n');
}
