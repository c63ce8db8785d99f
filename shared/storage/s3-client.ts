/**
 * The S3 client of a configuration, on its own so a function that needs S3 alone (the searcher) loads
 * only the S3 SDK at cold start; shared/storage/clients.ts hands out this same client as `s3`. Also the
 * configuration's fault switch (local stack only), shared by the S3 and DynamoDB clients.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { ShoalConfig } from '../config.js';
import { FaultSwitch, injectS3Faults } from './faults.js';
import { RETRY, typedAfterRetries } from './retry.js';
import { traceClient } from './trace.js';

/** The outermost middleware slot of every client (storage/retry.ts, typedAfterRetries). */
export const OUTERMOST = { step: 'initialize', priority: 'high', name: 'shoalTypedAfterRetries' } as const;

const switches = new WeakMap<ShoalConfig, FaultSwitch>();
const clients = new WeakMap<ShoalConfig, S3Client>();

/**
 * Local mode only (configuration refuses faults on AWS): the switch starts with SHOAL_FAULTS and tests
 * change it per test (setFaults). Undefined on AWS.
 */
export function faultSwitchOf(cfg: ShoalConfig): FaultSwitch | undefined {
  if (!cfg.endpoints) return undefined;
  let faults = switches.get(cfg);
  if (!faults) {
    faults = new FaultSwitch(cfg.faults);
    switches.set(cfg, faults);
  }
  return faults;
}

/** The S3 client for `cfg`, created on first use and reused for the same config object. */
export function makeS3Client(cfg: ShoalConfig): S3Client {
  const hit = clients.get(cfg);
  if (hit) return hit;
  const s3Config: S3ClientConfig = { region: cfg.region, ...RETRY.s3 };
  if (cfg.endpoints?.s3) {
    Object.assign(s3Config, {
      endpoint: cfg.endpoints.s3,
      // s3rver serves path-style URLs only.
      forcePathStyle: true,
      // s3rver predates flexible checksums: a streamed body would be stored with its aws-chunked
      // framing (docs/local-emulators.md).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    } satisfies S3ClientConfig);
  }
  const s3 = new S3Client(s3Config);
  s3.middlewareStack.add(typedAfterRetries('S3') as never, OUTERMOST);
  traceClient(s3, 'S3');
  const faults = faultSwitchOf(cfg);
  if (faults) injectS3Faults(s3, faults);
  clients.set(cfg, s3);
  return s3;
}
