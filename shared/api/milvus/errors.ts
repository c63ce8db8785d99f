/**
 * Shoal's typed errors → Milvus's error envelope. Milvus answers every failure with HTTP 200 and
 * `{code, message}`, the code from its `merr` table (milvus pkg/util/merr/errors.go); clients branch on
 * the code, so each Shoal error maps to the nearest Milvus one and keeps Shoal's message.
 */
import { ConflictError, NotFoundError, RetryLaterError, ShoalError, type ShoalErrorOptions } from '../../errors.js';
import { logger } from '../../log.js';

/** The merr codes this layer answers with. */
export const MILVUS_CODES = {
  success: 0,
  serviceUnavailable: 2,
  internal: 5,
  rateLimit: 8,
  unimplemented: 10,
  collectionNotFound: 100,
  partitionNotFound: 200,
  indexNotFound: 700,
  databaseNotFound: 800,
  parameterInvalid: 1100,
  privilegeNotPermitted: 1401,
  aliasNotFound: 1600,
  aliasCollectionConflict: 1601,
  aliasExists: 1602,
  needAuthenticate: 1800,
  /** Milvus's catch-all for an error it cannot classify. */
  unexpected: 65535,
} as const;

/** A Milvus feature Shoal does not have (users, roles, databases, hybrid search, …): said plainly. */
export class MilvusUnsupportedError extends ShoalError {
  readonly code = 'MILVUS_UNSUPPORTED';
  readonly statusCode = 400;
  readonly milvusCode: number;

  constructor(message: string, milvusCode: number = MILVUS_CODES.unimplemented, options: ShoalErrorOptions = {}) {
    super(message, options);
    this.milvusCode = milvusCode;
  }
}

/** What a not-found means in the operation at hand (a missing alias is not a missing collection). */
export type NotFoundKind = 'collection' | 'alias' | 'index';

export interface MilvusErrorBody {
  code: number;
  message: string;
}

/**
 * The envelope of a failure. Conflicts in alias operations are alias conflicts (1602 / 1601: Shoal's
 * collections and aliases share one namespace); other conflicts and bad input are 1100. Server faults
 * keep their message private, as in the v1 API.
 */
export function toMilvusError(
  err: unknown,
  context: { notFound?: NotFoundKind; aliasOp?: boolean } = {},
): MilvusErrorBody {
  const notFound = context.notFound ?? 'collection';
  if (err instanceof MilvusUnsupportedError) return { code: err.milvusCode, message: err.message };
  if (err instanceof ShoalError) {
    if (!err.expose) {
      logger.error(err.code, err);
      return {
        code: err.statusCode === 503 ? MILVUS_CODES.serviceUnavailable : MILVUS_CODES.unexpected,
        message: 'internal error',
      };
    }
    if (err instanceof NotFoundError) {
      const code =
        notFound === 'alias'
          ? MILVUS_CODES.aliasNotFound
          : notFound === 'index'
            ? MILVUS_CODES.indexNotFound
            : MILVUS_CODES.collectionNotFound;
      return { code, message: err.message };
    }
    if (err instanceof ConflictError && context.aliasOp) {
      const exists = /exists|revision/.test(err.message);
      return { code: exists ? MILVUS_CODES.aliasExists : MILVUS_CODES.aliasCollectionConflict, message: err.message };
    }
    if (err instanceof RetryLaterError) return { code: MILVUS_CODES.rateLimit, message: err.message };
    switch (err.statusCode) {
      case 401:
        return { code: MILVUS_CODES.needAuthenticate, message: err.message };
      case 403:
        return { code: MILVUS_CODES.privilegeNotPermitted, message: err.message };
      case 503:
        return { code: MILVUS_CODES.serviceUnavailable, message: err.message };
      default:
        return { code: MILVUS_CODES.parameterInvalid, message: err.message };
    }
  }
  if (err instanceof Error) logger.error('unhandled error', err);
  else logger.error('unhandled error', { thrown: String(err) });
  return { code: MILVUS_CODES.unexpected, message: 'internal error' };
}
