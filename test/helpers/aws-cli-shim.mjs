/**
 * A stand-in for the AWS CLI's `aws dynamodb put-item` (the only call the stack's CreateApiKeyCommand output
 * makes), sending the same PutItem through the SDK to SHIM_DYNAMODB_ENDPOINT (the embedded dynalite), so the
 * synthesized command itself runs in a test. Anything else exits 2.
 */
import process from 'node:process';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';

const [service, op, ...rest] = process.argv.slice(2);
if (service !== 'dynamodb' || op !== 'put-item') {
  process.stderr.write(`aws shim: unsupported command ${service} ${op}\n`);
  process.exit(2);
}
const flags = {};
for (let i = 0; i < rest.length; i += 2) flags[rest[i].replace(/^--/, '')] = rest[i + 1];
const client = new DynamoDBClient({ endpoint: process.env.SHIM_DYNAMODB_ENDPOINT, region: flags.region });
try {
  await client.send(
    new PutItemCommand({
      TableName: flags['table-name'],
      Item: JSON.parse(flags.item),
      ConditionExpression: flags['condition-expression'],
    }),
  );
} catch (err) {
  process.stderr.write(`aws shim: ${err.name}: ${err.message}\n`);
  process.exit(1);
} finally {
  client.destroy();
}
