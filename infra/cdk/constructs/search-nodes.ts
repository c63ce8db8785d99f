/**
 * Resident search nodes (context `searchNodes=true`; docs/architecture.md §7.7): one Fargate service per
 * searcher slot, each task running functions/search-node/main.ts (infra/search-node/Dockerfile) and
 * registered in Cloud Map as `slot-<n>.<namespace>`, in an isolated VPC (no NAT, no internet gateway) that
 * the api function joins to reach them. The api sends a slot's part to `http://slot-<n>.<namespace>:7300`
 * and invokes the slot's Lambda only when the node does not answer, so the Lambdas stay deployed as the
 * fallback.
 *
 * What reaches what: the node security group admits the node port from the api's security group only.
 * Gateway endpoints carry S3 and DynamoDB; interface endpoints SQS and Lambda (the api's queues and its
 * fallback invokes), X-Ray (the api's traces), ECR and CloudWatch Logs (the tasks' image pulls and logs).
 * The task role reads shards and deletion bitmaps, exactly the searcher Lambdas' grant.
 */
import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import { Construct } from 'constructs';
import { DEFAULT_SEARCH_NODE_PORT } from '../../../shared/config.js';
import { acknowledge, acknowledgeFindings } from '../nag.js';
import { shardCacheMb, type ShoalSettings } from '../settings.js';
import { PROJECT_ROOT } from './shoal-function.js';

/** The port a node listens on (SHOAL_SEARCH_NODE_PORT's default). */
export const SEARCH_NODE_PORT = DEFAULT_SEARCH_NODE_PORT;

/**
 * The api's SHOAL_SCATTER_MIN_MB with search nodes (default 32 MiB, two 768-d shards of 5,000 rows): below it
 * the api searches in process. Lower = more parts on the nodes (each ~1 ms of hop, in parallel), higher =
 * more shards searched one after another in the api.
 */
export const SEARCH_NODE_SCATTER_MIN_MB = 32;

/** Paths of the repository the image build never needs (the Docker build context is the repository root). */
export const SEARCH_NODE_IMAGE_EXCLUDE = [
  'node_modules',
  '.git',
  '.data',
  'cdk.out',
  'dist',
  'bench/results',
  'coverage',
  '**/*.log',
];

/** The private DNS namespace nodes register in, e.g. `search.shoal-dev.internal`. */
export function searchNodeNamespace(settings: ShoalSettings): string {
  return `search.${settings.prefix}.internal`;
}

/** Search threads of a node task of `cpu` Fargate units: one per whole vCPU. */
export function searchNodeThreads(cpu: number): number {
  return Math.max(1, Math.floor(cpu / 1024));
}

/** SHOAL_SEARCH_NODES: the URL template of a slot's node. */
export function searchNodeUrlTemplate(settings: ShoalSettings): string {
  return `http://slot-{slot}.${searchNodeNamespace(settings)}:${SEARCH_NODE_PORT}`;
}

export interface SearchNodesProps {
  settings: ShoalSettings & { searchNodes: NonNullable<ShoalSettings['searchNodes']> };
  logRetention: logs.RetentionDays;
  removalPolicy: RemovalPolicy;
}

export class SearchNodes extends Construct {
  readonly vpc: ec2.Vpc;
  /** The api function's security group: the only source the nodes admit. */
  readonly apiSecurityGroup: ec2.SecurityGroup;
  readonly nodeSecurityGroup: ec2.SecurityGroup;
  readonly taskRole: iam.Role;
  readonly cluster: ecs.Cluster;
  readonly services: ecs.FargateService[] = [];
  private readonly logGroup: logs.LogGroup;
  private readonly image: ecs.ContainerImage;

  constructor(
    scope: Construct,
    id: string,
    private readonly props: SearchNodesProps,
  ) {
    super(scope, id);
    const { settings, logRetention, removalPolicy } = props;
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention: logRetention, removalPolicy });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });
    const endpoints: Array<[string, ec2.InterfaceVpcEndpointAwsService]> = [
      ['Sqs', ec2.InterfaceVpcEndpointAwsService.SQS],
      ['Lambda', ec2.InterfaceVpcEndpointAwsService.LAMBDA],
      ['XRay', ec2.InterfaceVpcEndpointAwsService.XRAY],
      ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
      ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
      ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
    ];
    // Interface endpoints admit HTTPS from the VPC's CIDR only (CDK's default security group for them).
    for (const [name, service] of endpoints) this.vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true });

    this.apiSecurityGroup = new ec2.SecurityGroup(this, 'ApiSecurityGroup', {
      vpc: this.vpc,
      description: 'Shoal api function (coordinator): to search nodes and VPC endpoints',
      allowAllOutbound: true,
    });
    this.nodeSecurityGroup = new ec2.SecurityGroup(this, 'NodeSecurityGroup', {
      vpc: this.vpc,
      description: 'Shoal search nodes: slot parts from the api function only',
      allowAllOutbound: true,
    });
    this.nodeSecurityGroup.addIngressRule(
      this.apiSecurityGroup,
      ec2.Port.tcp(SEARCH_NODE_PORT),
      'Slot parts from the api function',
    );

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      defaultCloudMapNamespace: {
        name: searchNodeNamespace(settings),
        type: servicediscovery.NamespaceType.DNS_PRIVATE,
        vpc: this.vpc,
      },
    });
    this.taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Shoal search node tasks (reads shards and deletion bitmaps)',
    });
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: logRetention, removalPolicy });
    this.image = ecs.ContainerImage.fromAsset(PROJECT_ROOT, {
      file: 'infra/search-node/Dockerfile',
      exclude: SEARCH_NODE_IMAGE_EXCLUDE,
      platform: Platform.LINUX_ARM64,
    });
    acknowledge(
      this,
      'AwsSolutions-ECS2',
      'The environment holds configuration (table, bucket and queue names, sizes), no secrets.',
    );
    acknowledgeFindings(this.vpc, [
      {
        pattern: /^AwsSolutions-EC23$/,
        reason:
          "The interface endpoints' security groups admit HTTPS from the VPC's own CIDR block (a token cdk-nag " +
          'cannot read), not from anywhere.',
      },
    ]);
    acknowledgeFindings(this.taskRole, [
      {
        pattern: /^AwsSolutions-IAM5\[Resource::.*\/(shards|deletes|centroids)\/\*\]$/,
        reason:
          "The searcher Lambdas' read grant: shard, bitmap and centroid-table keys are content-addressed, " +
          'not known in advance.',
      },
    ]);
  }

  /** One service per slot, each task with the searcher's environment plus the slot it serves. */
  addSlots(slots: number, environment: Record<string, string>): void {
    const { settings } = this.props;
    const { cpu, memoryMiB, perSlot } = settings.searchNodes;
    // A search thread per vCPU (each its own WASM heap and cache), sharing the task's memory.
    const threads = searchNodeThreads(cpu);
    for (let slot = 0; slot < slots; slot++) {
      const task = new ecs.FargateTaskDefinition(this, `Slot${slot}Task`, {
        cpu,
        memoryLimitMiB: memoryMiB,
        taskRole: this.taskRole,
        runtimePlatform: {
          cpuArchitecture: ecs.CpuArchitecture.ARM64,
          operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        },
      });
      // The root file system is read-only; the shard cache's disk tier writes to a task volume at /tmp.
      task.addVolume({ name: 'tmp' });
      const container = task.addContainer('node', {
        image: this.image,
        environment: {
          ...environment,
          SHOAL_SEARCH_NODE_PORT: String(SEARCH_NODE_PORT),
          SHOAL_SEARCH_NODE_SLOTS: String(slot),
          SHOAL_SEARCH_NODE_THREADS: String(threads),
          // Per thread: half its share of the task's memory, as the searcher Lambdas keep half theirs, within
          // the 1,536 MiB one WASM heap holds (docs/architecture.md §5.3).
          SHOAL_SHARD_CACHE_MB: String(shardCacheMb(Math.floor(memoryMiB / threads))),
          SHOAL_SHARD_CACHE_DIR: '/tmp/shoal-shards',
          SHOAL_SHARD_DISK_MB: '4096',
        },
        portMappings: [{ containerPort: SEARCH_NODE_PORT }],
        logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: `slot-${slot}` }),
        healthCheck: {
          command: [
            'CMD-SHELL',
            `node -e "fetch('http://127.0.0.1:${SEARCH_NODE_PORT}/health')` +
              '.then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"',
          ],
          interval: Duration.seconds(15),
          timeout: Duration.seconds(3),
          startPeriod: Duration.seconds(20),
        },
        // SIGTERM drains (503 to new parts, which go to the Lambda); in-flight parts finish well within this.
        stopTimeout: Duration.seconds(30),
        readonlyRootFilesystem: true,
      });
      container.addMountPoints({ containerPath: '/tmp', sourceVolume: 'tmp', readOnly: false });
      if (task.executionRole) {
        acknowledgeFindings(task.executionRole, [
          {
            pattern: /^AwsSolutions-IAM5\[Resource::\*\]$/,
            reason: 'ecr:GetAuthorizationToken (pulling the image) supports no resource-level permissions.',
          },
        ]);
      }
      this.services.push(
        new ecs.FargateService(this, `Slot${slot}`, {
          cluster: this.cluster,
          taskDefinition: task,
          desiredCount: perSlot,
          securityGroups: [this.nodeSecurityGroup],
          vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
          assignPublicIp: false,
          minHealthyPercent: 100,
          maxHealthyPercent: 200,
          circuitBreaker: { rollback: true },
          cloudMapOptions: {
            name: `slot-${slot}`,
            dnsRecordType: servicediscovery.DnsRecordType.A,
            dnsTtl: Duration.seconds(10),
          },
        }),
      );
    }
  }
}
