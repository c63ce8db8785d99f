/**
 * `@shoal/client/node`: the whole SDK plus what only Node can do — importing a local file by its path. The
 * main entry stays free of `node:` modules so that browsers (the console) bundle it as is; Node programs
 * import from here and get `shoal.collection(name).importFile(path)`.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Shoal as CoreShoal } from './client.js';
import { CollectionClient } from './collection.js';
import { importData, type ImportFileOptions, type ImportTarget } from './import.js';
import type { ImportJob } from './types.js';

export * from './index.js';

/**
 * Uploads the file at `filePath` (streamed, behind its length), starts its import and resolves to the job once
 * it has ended (any final state; see `follow`). The file's base name is the object's name unless `filename`.
 */
export async function importFile(
  target: ImportTarget,
  filePath: string,
  options: ImportFileOptions = {},
): Promise<ImportJob> {
  const { size } = await stat(filePath);
  const stream = Readable.toWeb(createReadStream(filePath)) as ReadableStream<Uint8Array>;
  return importData(target, { stream, size }, { ...options, filename: options.filename ?? path.basename(filePath) });
}

/** A collection handle that can also import local files. */
export class NodeCollectionClient extends CollectionClient {
  /** Uploads a local file under the import prefix, starts its import and follows the job to its end. */
  importFile(filePath: string, options: ImportFileOptions = {}): Promise<ImportJob> {
    return importFile(this, filePath, options);
  }
}

/** `Shoal` whose collection handles have `importFile(path)`. */
export class Shoal extends CoreShoal {
  override collection(name: string): NodeCollectionClient {
    return new NodeCollectionClient(this.http, name, this.uploadFetch);
  }
}
