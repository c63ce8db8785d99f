/**
 * The local server runs the functions and queues with the CDK stack's settings: a timeout or a
 * redelivery that differs locally hides the very failures the local server is there to show.
 */
import { describe, expect, it } from 'vitest';
import { FUNCTION_SIZING, QUEUE_SETTINGS } from '../../infra/cdk/settings.js';
import { QUEUE_SETTINGS as LOCAL_QUEUES } from '../../infra/local/bootstrap.js';
import { LOCAL_TIMEOUTS_MS } from '../../infra/local/shoal.js';

describe('local settings', () => {
  it('gives every local function the timeout of its CDK function', () => {
    expect(LOCAL_TIMEOUTS_MS).toEqual({
      api: FUNCTION_SIZING.api.timeout.toMilliseconds(),
      indexBuilder: FUNCTION_SIZING.indexBuilder.timeout.toMilliseconds(),
      shardSearch: FUNCTION_SIZING.shardSearch.timeout.toMilliseconds(),
      import: FUNCTION_SIZING.importer.timeout.toMilliseconds(),
      buildWorker: FUNCTION_SIZING.buildWorker.timeout.toMilliseconds(),
    });
  });

  it("creates the local queues with the CDK queues' visibility timeout, maxReceiveCount and DLQ retention", () => {
    expect(LOCAL_QUEUES).toEqual({
      build: {
        visibilityTimeoutSeconds: QUEUE_SETTINGS.build.visibilityTimeout.toSeconds(),
        maxReceiveCount: QUEUE_SETTINGS.maxReceiveCount,
      },
      import: {
        visibilityTimeoutSeconds: QUEUE_SETTINGS.import.visibilityTimeout.toSeconds(),
        maxReceiveCount: QUEUE_SETTINGS.maxReceiveCount,
      },
      buildTask: {
        visibilityTimeoutSeconds: QUEUE_SETTINGS.buildTask.visibilityTimeout.toSeconds(),
        maxReceiveCount: QUEUE_SETTINGS.maxReceiveCount,
      },
      dlqRetentionSeconds: QUEUE_SETTINGS.dlqRetention.toSeconds(),
    });
  });
});
