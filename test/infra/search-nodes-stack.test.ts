/**
 * Resident search nodes in the CDK app (context `searchNodes=true`, docs/architecture.md §7.7), by assertion
 * on the synthesized service stack (without bundling: the functions' code is test/infra/stacks.test.ts's
 * business): one Fargate service per slot registered as `slot-<n>` in a private namespace, reachable from the
 * api function's security group only, in an isolated VPC with the endpoints the api and the tasks need; the
 * task role reads what the searcher Lambdas read and nothing else; cdk-nag has no unacknowledged finding.
 * Without the context, none of it exists and the api function stays out of any VPC.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { SEARCH_NODE_PORT, SEARCH_NODE_SCATTER_MIN_MB } from '../../infra/cdk/constructs/search-nodes.js';
import { SEARCH_NODE_FALLBACK_ALARM } from '../../infra/cdk/constructs/monitoring.js';
import { PROJECT_ROOT } from '../../infra/cdk/constructs/shoal-function.js';
import { nagFindings } from '../../infra/cdk/nag.js';
import { createShoal, type ShoalStacks } from '../../infra/cdk/shoal.js';
import { parseConfig } from '../../shared/config.js';

type Json = Record<string, unknown>;
interface Resource {
  Type: string;
  Properties: Json;
}

const cdkContext = (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;

function synth(context: Json): { app: App; stacks: ShoalStacks; t: Template } {
  const app = new App({ context: { ...cdkContext, ...context, 'aws:cdk:bundling-stacks': [] } });
  const stacks = createShoal(app);
  return { app, stacks, t: Template.fromStack(stacks.service) };
}

const of = (t: Template, type: string): Array<[string, Resource]> =>
  Object.entries(t.findResources(type) as Record<string, Resource>);
const idOf = (s: ShoalStacks, c: { node: { defaultChild?: unknown } }): string =>
  s.service.resolve(s.service.getLogicalId(c.node.defaultChild as never)) as string;

let nodes: ReturnType<typeof synth>;
const SLOTS = 3;

beforeAll(() => {
  nodes = synth({ stage: 'dev', searchSlots: SLOTS, searchNodes: 'true' });
}, 120_000);

describe('search nodes (searchNodes=true)', () => {
  it('run one Fargate service per slot, registered as slot-<n>, serving that slot on the node port', () => {
    const { t } = nodes;
    const services = of(t, 'AWS::ECS::Service');
    expect(services).toHaveLength(SLOTS);
    const registries = Object.fromEntries(
      of(t, 'AWS::ServiceDiscovery::Service').map(([id, r]) => [id, r.Properties.Name]),
    );
    const tasks = Object.fromEntries(of(t, 'AWS::ECS::TaskDefinition'));
    const served = services.map(([, svc]) => {
      expect(svc.Properties).toMatchObject({
        LaunchType: 'FARGATE',
        DesiredCount: 1,
        NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED' } },
        DeploymentConfiguration: { DeploymentCircuitBreaker: { Enable: true, Rollback: true } },
      });
      const registry = (svc.Properties.ServiceRegistries as Array<{ RegistryArn: { 'Fn::GetAtt': string[] } }>)[0];
      const name = registries[registry.RegistryArn['Fn::GetAtt'][0]] as string;
      const task = tasks[(svc.Properties.TaskDefinition as { Ref: string }).Ref].Properties;
      expect(task).toMatchObject({
        Cpu: '1024',
        Memory: '4096',
        RequiresCompatibilities: ['FARGATE'],
        RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
      });
      const [container] = task.ContainerDefinitions as Array<{
        Environment: Array<{ Name: string; Value: unknown }>;
        PortMappings: Array<{ ContainerPort: number }>;
        LogConfiguration: { LogDriver: string };
        ReadonlyRootFilesystem: boolean;
        MountPoints: unknown[];
        HealthCheck: { Command: string[] };
      }>;
      const env = Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value]));
      expect(container.PortMappings).toEqual([expect.objectContaining({ ContainerPort: SEARCH_NODE_PORT })]);
      expect(container.LogConfiguration.LogDriver).toBe('awslogs');
      // Read-only root; the disk cache writes to a task volume.
      expect(container.ReadonlyRootFilesystem).toBe(true);
      expect(container.MountPoints).toEqual([{ ContainerPath: '/tmp', SourceVolume: 'tmp', ReadOnly: false }]);
      expect(env.SHOAL_SHARD_CACHE_DIR).toMatch(/^\/tmp\//);
      expect(container.HealthCheck.Command.join(' ')).toContain(`127.0.0.1:${SEARCH_NODE_PORT}/health`);
      expect(env).toMatchObject({
        SHOAL_SEARCH_NODE_PORT: String(SEARCH_NODE_PORT),
        SHOAL_SEARCH_NODE_THREADS: '1',
        SHOAL_SHARD_CACHE_MB: '1536',
      });
      // The node's own configuration parses (tokens stand in for the names CloudFormation fills in).
      const concrete = Object.fromEntries(
        Object.entries(env).map(([k, v]) => [k, typeof v === 'string' ? v : k.endsWith('_URL') ? 'https://q' : 'tok']),
      );
      expect(parseConfig(concrete).searchNode.slots).toEqual(new Set([Number(env.SHOAL_SEARCH_NODE_SLOTS)]));
      expect(name).toBe(`slot-${env.SHOAL_SEARCH_NODE_SLOTS}`);
      return Number(env.SHOAL_SEARCH_NODE_SLOTS);
    });
    expect(served.sort()).toEqual([0, 1, 2]);
    t.hasResourceProperties('AWS::ServiceDiscovery::PrivateDnsNamespace', { Name: 'search.shoal-dev.internal' });
  });

  it("send the api's slot parts to the nodes, from the api's security group, the only source they admit", () => {
    const { t, stacks } = nodes;
    const compute = stacks.service.compute;
    const api = of(t, 'AWS::Lambda::Function').find(([id]) => id === idOf(stacks, compute.api.fn))![1];
    const env = (api.Properties.Environment as { Variables: Json }).Variables;
    expect(env.SHOAL_SEARCH_NODES).toBe(`http://slot-{slot}.search.shoal-dev.internal:${SEARCH_NODE_PORT}`);
    // A part costs a hop of ~1 ms on the nodes, not an invoke: the api scatters from a few shards up.
    expect(env.SHOAL_SCATTER_MIN_MB).toBe(String(SEARCH_NODE_SCATTER_MIN_MB));
    const apiSg = idOf(stacks, compute.searchNodes!.apiSecurityGroup);
    const nodeSg = idOf(stacks, compute.searchNodes!.nodeSecurityGroup);
    expect(api.Properties.VpcConfig).toMatchObject({ SecurityGroupIds: [{ 'Fn::GetAtt': [apiSg, 'GroupId'] }] });
    // Its role may attach the function's network interfaces (what AWSLambdaVPCAccessExecutionRole grants).
    const apiPolicy = of(t, 'AWS::IAM::Policy').find(([, p]) =>
      JSON.stringify(p.Properties.Roles).includes(idOf(stacks, compute.api.role)),
    )![1];
    expect((apiPolicy.Properties.PolicyDocument as { Statement: unknown[] }).Statement).toContainEqual(
      expect.objectContaining({
        Sid: 'VpcNetworkInterfaces',
        Action: expect.arrayContaining(['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface']),
        Resource: '*',
      }),
    );
    // Only the api joins the VPC: the other functions keep Lambda's own networking.
    const inVpc = of(t, 'AWS::Lambda::Function').filter(([, f]) => f.Properties.VpcConfig);
    expect(inVpc.map(([id]) => id)).toEqual([idOf(stacks, compute.api.fn)]);
    const ingress = of(t, 'AWS::EC2::SecurityGroupIngress').map(([, r]) => r.Properties);
    expect(ingress).toEqual([
      expect.objectContaining({
        GroupId: { 'Fn::GetAtt': [nodeSg, 'GroupId'] },
        SourceSecurityGroupId: { 'Fn::GetAtt': [apiSg, 'GroupId'] },
        IpProtocol: 'tcp',
        FromPort: SEARCH_NODE_PORT,
        ToPort: SEARCH_NODE_PORT,
      }),
    ]);
    const nodeGroup = t.findResources('AWS::EC2::SecurityGroup')[nodeSg].Properties as Json;
    expect(nodeGroup.SecurityGroupIngress).toBeUndefined();
    for (const [, svc] of of(t, 'AWS::ECS::Service')) {
      const cfg = (svc.Properties.NetworkConfiguration as { AwsvpcConfiguration: { SecurityGroups: unknown[] } })
        .AwsvpcConfiguration;
      expect(cfg.SecurityGroups).toEqual([{ 'Fn::GetAtt': [nodeSg, 'GroupId'] }]);
    }
  });

  it('keep the VPC isolated: no NAT or internet gateway, endpoints for what the api and the tasks call', () => {
    const { t } = nodes;
    expect(of(t, 'AWS::EC2::NatGateway')).toHaveLength(0);
    expect(of(t, 'AWS::EC2::InternetGateway')).toHaveLength(0);
    // ServiceName is com.amazonaws.<region>.<service>, the region a token: keep what follows it.
    const services = of(t, 'AWS::EC2::VPCEndpoint').map(([, e]) => {
      const name = JSON.stringify(e.Properties.ServiceName);
      const service = /"\.([a-z0-9.-]+)"\]\]\}$/.exec(name)?.[1] ?? name;
      return `${String(e.Properties.VpcEndpointType ?? 'Gateway')}:${service}`;
    });
    expect(services.sort()).toEqual(
      [
        'Gateway:dynamodb',
        'Gateway:s3',
        'Interface:ecr.api',
        'Interface:ecr.dkr',
        'Interface:lambda',
        'Interface:logs',
        'Interface:sqs',
        'Interface:xray',
      ].sort(),
    );
    for (const [, e] of of(t, 'AWS::EC2::VPCEndpoint').filter(
      ([, e]) => e.Properties.VpcEndpointType === 'Interface',
    )) {
      expect(e.Properties.PrivateDnsEnabled).toBe(true);
    }
    t.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT', LogDestinationType: 'cloud-watch-logs' });
    t.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
  });

  it("grant the tasks the searcher Lambdas' read of the index objects and nothing else", () => {
    const { t, stacks } = nodes;
    const compute = stacks.service.compute;
    const statementsOf = (roleId: string) => {
      const policies = of(t, 'AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(roleId));
      return policies.flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: unknown[] }).Statement);
    };
    const task = statementsOf(idOf(stacks, compute.searchNodes!.taskRole));
    const searcher = statementsOf(idOf(stacks, compute.shardSearch[0].role)) as Array<{ Action: unknown }>;
    // The searcher's statements minus its log-group write (the tasks log through the awslogs driver).
    const reads = searcher.filter((s) => JSON.stringify(s.Action).includes('s3:'));
    expect(task).toEqual(reads);
    expect(JSON.stringify(task)).not.toMatch(/dynamodb:|sqs:|lambda:|s3:Put|s3:Delete/);
    const trust = t.findResources('AWS::IAM::Role')[idOf(stacks, compute.searchNodes!.taskRole)].Properties as Json;
    expect(JSON.stringify(trust.AssumeRolePolicyDocument)).toContain('ecs-tasks.amazonaws.com');
  });

  it('build the image from infra/search-node/Dockerfile for arm64', () => {
    const assembly = nodes.app.synth();
    const manifest = JSON.parse(
      readFileSync(path.join(assembly.directory, `${nodes.stacks.service.artifactId}.assets.json`), 'utf8'),
    ) as { dockerImages: Record<string, { source: { directory: string; dockerFile?: string; platform?: string } }> };
    const images = Object.values(manifest.dockerImages);
    expect(images).toHaveLength(1);
    expect(images[0].source).toMatchObject({ dockerFile: 'infra/search-node/Dockerfile', platform: 'linux/arm64' });
    // The build context has what the Dockerfile copies and bundles, and none of the local bulk.
    const context = path.join(assembly.directory, images[0].source.directory);
    for (const file of ['package-lock.json', 'engine/dist/shoal-hnsw.wasm', 'functions/search-node/main.ts']) {
      expect(existsSync(path.join(context, file)), file).toBe(true);
    }
    for (const dir of ['node_modules', '.git', '.data']) expect(existsSync(path.join(context, dir)), dir).toBe(false);
  });

  it('page when parts keep falling back to the slot Lambdas', () => {
    nodes.t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'shoal-dev-search-node-fallbacks',
      MetricName: 'SearchNodeFallback',
      Namespace: 'Shoal',
      Dimensions: [{ Name: 'service', Value: 'shoal-dev-api' }],
      Statistic: 'Sum',
      Period: 60,
      Threshold: SEARCH_NODE_FALLBACK_ALARM.perMinute,
      EvaluationPeriods: SEARCH_NODE_FALLBACK_ALARM.minutes,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: [Match.anyValue()],
    });
  });

  it('pass cdk-nag with no unacknowledged finding', () => {
    expect(nagFindings(nodes.app).map((f) => f.ruleName)).toEqual([]);
  });
});

describe('search nodes with more vCPUs', () => {
  it('search on a thread per vCPU, each thread with its share of the memory', () => {
    const { t } = synth({
      stage: 'dev',
      searchSlots: 1,
      searchNodes: 'true',
      searchNodeCpu: '4096',
      searchNodeMemoryMiB: '8192',
    });
    const [[, task]] = of(t, 'AWS::ECS::TaskDefinition');
    const env = Object.fromEntries(
      (
        task.Properties.ContainerDefinitions as Array<{ Environment: Array<{ Name: string; Value: unknown }> }>
      )[0].Environment.map((e) => [e.Name, e.Value]),
    );
    expect(task.Properties).toMatchObject({ Cpu: '4096', Memory: '8192' });
    expect(env).toMatchObject({ SHOAL_SEARCH_NODE_THREADS: '4', SHOAL_SHARD_CACHE_MB: '1024' });
  });
});

describe('without searchNodes', () => {
  it('deploy no VPC, cluster or node, and keep the api out of any VPC', () => {
    const { t, stacks } = synth({ stage: 'dev', searchSlots: SLOTS });
    for (const type of ['AWS::EC2::VPC', 'AWS::ECS::Cluster', 'AWS::ECS::Service', 'AWS::EC2::VPCEndpoint']) {
      expect(of(t, type), type).toHaveLength(0);
    }
    const alarms = of(t, 'AWS::CloudWatch::Alarm').map(([, a]) => String(a.Properties.AlarmName));
    expect(alarms.some((n) => n.includes('search-node'))).toBe(false);
    const api = of(t, 'AWS::Lambda::Function').find(([id]) => id === idOf(stacks, stacks.service.compute.api.fn))!;
    expect(api[1].Properties.VpcConfig).toBeUndefined();
    expect((api[1].Properties.Environment as { Variables: Json }).Variables.SHOAL_SEARCH_NODES).toBeUndefined();
  });

  it('refuse a malformed searchNodes context', () => {
    expect(() => synth({ searchNodes: 'yes' })).toThrow(/searchNodes=yes: must be true or false/);
    expect(() => synth({ searchNodes: 'true', searchNodeCpu: '3' })).toThrow(/searchNodeCpu/);
  });
});
