/**
 * The fault layer (shared/storage/faults.ts) and the client retry policy (shared/storage/clients.ts)
 * against a counting stub endpoint: faults sit inside the SDK's retry loop, are reproducible from
 * their seed, exhausted retries become StorageUnavailableError, and an `atMostOnce` write is never
 * resent after an answer that may have been lost.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { parseConfig } from '../../shared/config.js';
import { StorageUnavailableError, atMostOnce, makeAwsClients, setFaults } from '../../shared/storage/clients.js';
import { FaultSwitch, describeFaults, parseFaults } from '../../shared/storage/faults.js';

let server: http.Server;
let requests = 0;
let endpoint: string;

beforeAll(async () => {
  // Answers every DynamoDB call with an empty 200: enough for GetItem and UpdateItem outputs.
  server = http.createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function clients() {
  return makeAwsClients(
    parseConfig({
      AWS_REGION: 'us-east-1',
      SHOAL_BUCKET: 'faults-unit',
      SHOAL_CATALOG_TABLE: 'catalog',
      SHOAL_RECORDS_TABLE: 'records',
      SHOAL_BUILD_QUEUE_URL: `${endpoint}/000000000000/build`,
      SHOAL_DYNAMODB_ENDPOINT: endpoint,
    }),
  );
}

const get = () => new GetCommand({ TableName: 'catalog', Key: { pk: 'a', sk: 'b' } });
const add = () =>
  new UpdateCommand({
    TableName: 'catalog',
    Key: { pk: 'a', sk: 'b' },
    UpdateExpression: 'ADD n :one',
    ExpressionAttributeValues: { ':one': 1 },
  });

describe('SHOAL_FAULTS', () => {
  it('parses every fault, names the rule of a bad one, and lists them back', () => {
    const spec = 'gsi-lag=250,ddb-throttle=0.1,ddb-cond-fail=0.2,ddb-lost-response=0.3,s3-slowdown=1,s3-timeout=0';
    const faults = parseFaults(`${spec},faults-seed=7`);
    expect(faults).toEqual({
      gsiLagMs: 250,
      ddbThrottle: 0.1,
      ddbCondFail: 0.2,
      ddbLostResponse: 0.3,
      s3SlowDown: 1,
      s3Timeout: 0,
      seed: 7,
    });
    expect(describeFaults(faults as object)).toEqual([...spec.split(','), 'faults-seed=7']);
    expect(parseFaults('ddb-throttle=1.5')).toMatch(/ddb-throttle.*probability/);
    expect(parseFaults('s3-slowdown=often')).toMatch(/s3-slowdown.*probability/);
    expect(parseFaults('faults-seed=-1')).toMatch(/faults-seed.*integer/);
  });

  it('draws the same faults from the same seed', () => {
    const draws = (seed: number) => {
      const sw = new FaultSwitch({ ddbThrottle: 0.5, seed });
      return Array.from({ length: 32 }, () => sw.fires('ddb-throttle', 0.5));
    };
    expect(draws(3)).toEqual(draws(3));
    expect(draws(3)).not.toEqual(draws(4));
  });
});

describe('faults inside the SDK retry loop', () => {
  it('retries injected throttling with the SDK, then fails with a typed 503 after the attempts', async () => {
    const aws = clients();
    const sw = setFaults(aws, 'ddb-throttle=1');
    const before = requests;
    const err = await aws.ddb.send(get()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({ statusCode: 503, details: { service: 'DynamoDB' } });
    // Five attempts (the DynamoDB retry policy), none sent: throttling is refused before it runs.
    expect(sw.injected['ddb-throttle']).toBe(5);
    expect(requests).toBe(before);
    setFaults(aws, '');
  }, 30_000);

  it('resends a request whose response was lost, so an ordinary write is applied twice', async () => {
    const aws = clients();
    setFaults(aws, 'ddb-lost-response=0.25,faults-seed=337');
    const before = requests;
    await aws.ddb.send(get());
    expect(requests - before).toBeGreaterThan(1);
    setFaults(aws, '');
  });

  it('never resends an atMostOnce write after a lost response: one request, a typed ambiguous 503', async () => {
    const aws = clients();
    setFaults(aws, 'ddb-lost-response=1');
    const before = requests;
    const err = await aws.ddb.send(atMostOnce(add())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({ details: { ambiguous: true } });
    expect(requests - before).toBe(1);
    setFaults(aws, '');
  });

  it('still resends an atMostOnce write after throttling (it was not applied)', async () => {
    const aws = clients();
    setFaults(aws, 'ddb-throttle=0.25,faults-seed=337');
    const before = requests;
    await aws.ddb.send(atMostOnce(add()));
    expect(requests - before).toBe(1);
    setFaults(aws, '');
  }, 30_000);
});
