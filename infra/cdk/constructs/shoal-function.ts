/**
 * One Shoal Lambda function: `NodejsFunction` bundled locally by esbuild (no Docker) into a single
 * ESM file, nodejs22.x on arm64, its own log group with retention, its own role (no AWS managed
 * policies: the role may write to its own log group and nothing else until a grant adds more).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RemovalPolicy, Size, type Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The repository root (where package.json and package-lock.json live). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * ESM bundles may still contain CommonJS dependencies that call `require` (e.g. node built-ins
 * inside the AWS SDK's CJS helpers); define it from `createRequire`, and `__filename`/`__dirname`.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __shoalCreateRequire } from 'node:module';" +
  "import { fileURLToPath as __shoalFileURLToPath } from 'node:url';" +
  "import { dirname as __shoalDirname } from 'node:path';" +
  'const require = __shoalCreateRequire(import.meta.url);' +
  'const __filename = __shoalFileURLToPath(import.meta.url);' +
  'const __dirname = __shoalDirname(__filename);';

/** Loaded at run time from `node_modules` beside the bundle, never bundled (native code, WASM beside them). */
export const ONNX_MODULES = ['onnxruntime-node', 'onnxruntime-web'];

/**
 * What of onnxruntime-node a function that runs models ships (docs/models.md): its JavaScript, its
 * dependency onnxruntime-common, and the prebuilt library for Lambda's arm64 only (≈ 25 MB of the package's
 * ≈ 250 MB across platforms). The package's install script only fetches GPU providers; it never runs.
 */
export const ONNX_NODE_FILES = [
  'node_modules/onnxruntime-node/package.json',
  'node_modules/onnxruntime-node/dist',
  'node_modules/onnxruntime-node/bin/napi-v6/linux/arm64',
  'node_modules/onnxruntime-common/package.json',
  'node_modules/onnxruntime-common/dist',
];

/** The engine's WASM module, relative to the project root; copied beside every bundle. */
export const ENGINE_WASM = 'engine/dist/shoal-hnsw.wasm';

/**
 * How every Shoal function is bundled; exported so `npm run bench:cold-start` bundles exactly the same
 * way (bench/cold-start.ts maps these options onto esbuild's API as CDK maps them onto its CLI).
 */
export const SHOAL_BUNDLING = {
  format: OutputFormat.ESM,
  target: 'node22',
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  minify: true,
  sourceMap: true,
  sourceMapMode: SourceMapMode.EXTERNAL,
  sourcesContent: false,
  // The nodejs22.x runtime ships the AWS SDK v3; everything else (zod, middy, Powertools,
  // Shoal's code) is bundled into the one index.mjs — except the ONNX runtimes, which load native or WASM
  // files beside their own modules: the functions that run models get them copied (MODEL_BUNDLING).
  externalModules: ['@aws-sdk/*', ...ONNX_MODULES],
  forceDockerBundling: false,
  // Shoal's hnsw engine (engine/dist/shoal-hnsw.wasm, ~210 KB) goes beside index.mjs, where
  // shared/engine/shoal-wasm.ts looks first. A copy, not an embed: the bundle ships the very
  // bytes whose sha256 CI checks, and index.mjs stays free of a base64 blob to parse.
  commandHooks: {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (inputDir: string, outputDir: string) => [
      `cp "${path.join(inputDir, ENGINE_WASM)}" "${path.join(outputDir, path.basename(ENGINE_WASM))}"`,
    ],
  },
} satisfies BundlingOptions;

/** SHOAL_BUNDLING plus onnxruntime-node under the bundle's node_modules (the api, import and builder functions). */
export const MODEL_BUNDLING = {
  ...SHOAL_BUNDLING,
  commandHooks: {
    ...SHOAL_BUNDLING.commandHooks,
    afterBundling: (inputDir: string, outputDir: string) => [
      ...SHOAL_BUNDLING.commandHooks.afterBundling(inputDir, outputDir),
      ...ONNX_NODE_FILES.map(
        (file) =>
          `mkdir -p "${path.join(outputDir, path.dirname(file))}" && ` +
          `cp -R "${path.join(inputDir, file)}" "${path.join(outputDir, file)}"`,
      ),
    ],
  },
} satisfies BundlingOptions;

export interface ShoalFunctionProps {
  /** Entry file relative to the project root, e.g. `functions/api/handler.ts`. */
  entry: string;
  /** Explicit function name (searcher slots need one the coordinator can compute). */
  functionName?: string;
  description: string;
  memoryMb: number;
  timeout: Duration;
  ephemeralMb?: number;
  environment: Record<string, string>;
  logRetention: logs.RetentionDays;
  /** Log groups are kept (RETAIN) in prod, destroyed with the stack in dev. */
  removalPolicy: RemovalPolicy;
  /** Reserved concurrency: both a guaranteed share of the account's concurrency and a ceiling. */
  reservedConcurrency?: number;
  /** Runs ONNX models (embedding functions, migrations, artifact checks): ships onnxruntime-node. */
  models?: boolean;
  /** Attached to a VPC (the api function when search nodes are deployed: it reaches them there). */
  vpc?: { vpc: ec2.IVpc; securityGroups: ec2.ISecurityGroup[]; subnets: ec2.SubnetSelection };
}

export class ShoalFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ShoalFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      ...(props.functionName ? { logGroupName: `/aws/lambda/${props.functionName}` } : {}),
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.description} (execution role)`,
    });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): this log group only.
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    if (props.vpc) {
      // What AWSLambdaVPCAccessExecutionRole grants (CDK adds it only to roles it creates): Lambda attaches
      // the function's network interfaces with its execution role. EC2 scopes none of these to a resource.
      this.role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'VpcNetworkInterfaces',
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
      );
    }

    this.fn = new NodejsFunction(this, 'Function', {
      entry: path.join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      ...(props.functionName ? { functionName: props.functionName } : {}),
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memoryMb,
      timeout: props.timeout,
      ephemeralStorageSize: Size.mebibytes(props.ephemeralMb ?? 512),
      ...(props.reservedConcurrency !== undefined ? { reservedConcurrentExecutions: props.reservedConcurrency } : {}),
      role: this.role,
      ...(props.vpc
        ? { vpc: props.vpc.vpc, securityGroups: props.vpc.securityGroups, vpcSubnets: props.vpc.subnets }
        : {}),
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
      environment: {
        // Stack traces through the bundle's source map (sources themselves are not shipped).
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: props.models ? MODEL_BUNDLING : SHOAL_BUNDLING,
    });
  }
}
