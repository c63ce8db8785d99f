/**
 * Stateless resources: the functions, the HTTP API and the monitoring. Takes the data stack's
 * resources as references (one direction only), so it can be replaced freely.
 */
import { CfnOutput, Fn, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { Api } from '../constructs/api.js';
import { Compute } from '../constructs/compute.js';
import { Monitoring } from '../constructs/monitoring.js';
import type { ShoalSettings } from '../settings.js';
import type { DataStack } from './data-stack.js';
import { KEY_TOKEN_PREFIX } from '../../../shared/auth/keys.js';
import { APIKEYS_PK, APIKEY_PREFIX, META_SK } from '../../../shared/storage/keys.js';

export interface ServiceStackProps extends StackProps {
  settings: ShoalSettings;
  data: DataStack;
}

export class ServiceStack extends Stack {
  readonly compute: Compute;
  readonly api: Api;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: ServiceStackProps) {
    super(scope, id, props);
    const { settings, data } = props;

    this.compute = new Compute(this, 'Compute', {
      settings,
      bucket: data.bucket,
      catalogTable: data.catalogTable,
      recordsTable: data.recordsTable,
      buildQueue: data.buildQueue,
      importQueue: data.importQueue,
      buildTaskQueue: data.buildTaskQueue,
    });
    this.api = new Api(this, 'Api', { settings, handler: this.compute.api.fn, authorizer: this.compute.authorizer.fn });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      settings,
      httpApi: this.api.httpApi,
      stage: this.api.stage,
      functions: {
        api: this.compute.api,
        indexBuilder: this.compute.indexBuilder,
        buildWorker: this.compute.buildWorker,
        shardSearch: this.compute.shardSearch,
        importer: this.compute.importer,
        authorizer: this.compute.authorizer,
      },
      buildQueue: data.buildQueue,
      buildDlq: data.buildDlq,
      importQueue: data.importQueue,
      importDlq: data.importDlq,
      buildTaskQueue: data.buildTaskQueue,
      buildTaskDlq: data.buildTaskDlq,
    });

    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'Shoal API base URL' });
    new CfnOutput(this, 'BucketName', {
      value: data.bucket.bucketName,
      description: 'Data bucket (upload imports to s3://<bucket>/imports/<collection>/)',
    });
    new CfnOutput(this, 'CatalogTableName', { value: data.catalogTable.tableName });
    new CfnOutput(this, 'DashboardUrl', {
      value:
        `https://${this.region}.console.aws.amazon.com/cloudwatch/home` +
        `?region=${this.region}#dashboards:name=${settings.prefix}`,
    });
    // The key is generated and hashed locally; only its sha256 reaches DynamoDB (the authorizer hashes the bearer
    // token the same way). Written as `POST /v1/keys` writes an admin key (shared/auth/dynamo-key-store.ts): the
    // registry entry first, then the key item, both create-only, so `GET /v1/keys` lists it and
    // `DELETE /v1/keys/{id}` revokes it.
    const fields =
      `\\"name\\":{\\"S\\":\\"bootstrap admin\\"},\\"role\\":{\\"S\\":\\"admin\\"},` +
      `\\"createdBy\\":{\\"S\\":\\"cdk-output\\"},\\"createdAt\\":{\\"S\\":\\"$NOW\\"}`;
    const putItem = (item: string): string[] => [
      `aws dynamodb put-item --region ${this.region} --table-name `,
      data.catalogTable.tableName,
      ` --condition-expression "attribute_not_exists(pk)" --item "{${item},${fields}}"`,
    ];
    new CfnOutput(this, 'CreateApiKeyCommand', {
      description: 'Creates an admin API key: prints it once; only its sha256 is stored in the catalog',
      value: Fn.join('', [
        `KEY=${KEY_TOKEN_PREFIX}$(openssl rand -base64 32 | tr "+/" "-_" | tr -d "="); `,
        'HASH=$(printf %s "$KEY" | openssl dgst -sha256 -r | cut -d" " -f1); ',
        'ID=key_$(openssl rand -hex 8); NOW=$(date -u +%FT%TZ); ',
        ...putItem(
          `\\"pk\\":{\\"S\\":\\"${APIKEYS_PK}\\"},\\"sk\\":{\\"S\\":\\"$ID\\"},\\"hash\\":{\\"S\\":\\"$HASH\\"}`,
        ),
        ' && ',
        ...putItem(
          `\\"pk\\":{\\"S\\":\\"${APIKEY_PREFIX}$HASH\\"},\\"sk\\":{\\"S\\":\\"${META_SK}\\"},` +
            `\\"keyId\\":{\\"S\\":\\"$ID\\"}`,
        ),
        ' && echo "API key: $KEY (id $ID)"',
      ]),
    });
  }
}
