/**
 * JSONL: one JSON object per line, `{"id", "values" | "vector" | "inputs", "metadata"}` (`inputs`: raw model
 * input for a collection with an embedding function, docs/models.md). Other top-level
 * fields are merged into the metadata (the `metadata` object wins on a name clash). Blank lines
 * are skipped. Rows are numbered by physical line (1-based).
 */
import { UnreadableFileError, type ByteSource, type ImportRow, type ReaderOptions } from '../types.js';
import { assertText, makeRow, readLines, rejectRow, sniff } from './common.js';

export async function* readJsonl(
  source: ByteSource,
  opts: ReaderOptions & { gzip?: boolean },
): AsyncGenerator<ImportRow> {
  const gzip = opts.gzip ?? false;
  if (!gzip && (opts.from?.rows ?? 0) === 0) assertText(await sniff(source), source.name, 'JSONL');
  let checkedFirst = gzip === false || (opts.from?.rows ?? 0) > 0;
  for await (const line of readLines(source, { gzip, from: opts.from })) {
    const base = {
      rowNumber: line.line,
      next: { rows: line.line, ...(gzip ? {} : { offset: line.nextOffset }) },
      bytesRead: line.bytesRead,
    };
    if (!checkedFirst) {
      // A gzip stream is only known to hold text once decompressed: check the first line.
      if (line.text !== undefined && line.text.includes('\u0000')) {
        throw new UnreadableFileError(`${source.name} is not a JSONL file: it contains binary data (NUL bytes)`);
      }
      if (line.error?.code === 'BAD_ENCODING')
        throw new UnreadableFileError(`${source.name} is not a JSONL file: it is not UTF-8 text`);
      checkedFirst = true;
    }
    if (line.error) {
      yield rejectRow(base, line.error);
      continue;
    }
    const text = line.text ?? '';
    if (text.trim() === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (err) {
      yield rejectRow(base, { code: 'BAD_JSON', message: `broken JSON: ${(err as Error).message}` });
      continue;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      yield rejectRow(base, { code: 'BAD_JSON', message: 'line is not a JSON object' });
      continue;
    }
    const { id, values, vector, inputs, metadata, ...rest } = obj as Record<string, unknown>;
    let meta: unknown = metadata;
    if (Object.keys(rest).length) {
      meta =
        metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
          ? metadata
          : { ...rest, ...(metadata as object | undefined) };
    }
    if (inputs !== undefined && values === undefined && vector === undefined) {
      if (opts.inputLength === undefined) {
        yield rejectRow(base, {
          code: 'NO_EMBEDDING_FUNCTION',
          message: 'row has "inputs" but the collection has no embedding function; send "values"',
        });
        continue;
      }
      const row = makeRow(base, id, inputs, meta, opts.inputLength);
      yield row.error ? row : { ...row, raw: true };
      continue;
    }
    yield makeRow(base, id, values ?? vector, meta, opts.dimension);
  }
}
