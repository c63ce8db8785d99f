/**
 * Uploads into a collection's import drop folder through presigned URLs (`POST …/imports/uploads`): the
 * rules a filename must follow, and the content types a PUT may be signed for.
 */
import { randomBytes } from 'node:crypto';
import { ValidationError } from '../errors.js';
import { hasControlCharacter, hasLoneSurrogate } from '../validation.js';
import { detectFormat, isSidecar } from './formats/index.js';

/** How long an upload URL stays valid (15 minutes, as for model artifacts). */
export const IMPORT_UPLOAD_URL_TTL_S = 900;

/** UTF-8 bytes of a filename: with the folder and the per-upload part the key stays far below S3's 1024. */
export const MAX_UPLOAD_FILENAME_BYTES = 255;

/** A single presigned PUT carries at most this much (S3's single-PUT limit, 5 GiB). */
export const MAX_UPLOAD_BYTES = 5 * 2 ** 30;

const SUPPORTED = '.jsonl, .ndjson, .csv (optionally .gz), .parquet, .npy';

/** ValidationError on `filename` unless it is a plain file name with an import format's extension. */
export function checkUploadFilename(filename: string): string {
  const refuse = (rule: string): never => {
    throw new ValidationError(`filename ${rule}`, { field: 'filename' });
  };
  if (filename.length === 0) refuse('must not be empty');
  if (hasControlCharacter(filename)) refuse('must not contain control characters');
  if (hasLoneSurrogate(filename)) refuse('must be valid Unicode (it contains a lone surrogate)');
  if (filename.includes('/') || filename.includes('\\')) refuse('must be a file name, without / or \\');
  const bytes = Buffer.byteLength(filename, 'utf8');
  if (bytes > MAX_UPLOAD_FILENAME_BYTES)
    refuse(`must be at most ${MAX_UPLOAD_FILENAME_BYTES} UTF-8 bytes, got ${bytes}`);
  // An .npy file's ids sidecar must sit beside it, and every upload gets a folder of its own.
  if (isSidecar(filename)) refuse('must not be an ids sidecar (.ids.txt, .ids.jsonl): upload those with the SDK');
  if (detectFormat(filename) === undefined) refuse(`must end in an import format's extension (${SUPPORTED})`);
  return filename;
}

/** The per-upload folder: sortable by time, unique by its random part. */
export function uploadFolder(now: number): string {
  const stamp = new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(6).toString('hex')}`;
}
