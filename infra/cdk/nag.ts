/**
 * cdk-nag v3 glue.
 *
 * Findings are acknowledged next to the resource they are about, always with a reason:
 * - `acknowledge(construct, id, reason)`: CDK's native `Validations.of(c).acknowledge()` with an
 *   exact rule id (e.g. `AwsSolutions-L1`), for the construct and everything below it;
 * - `acknowledgeFindings(construct, [{ pattern, reason }])`: for granular findings whose ids embed
 *   logical ids or cross-stack export names (`AwsSolutions-IAM5[Resource::<Data666C94C7.Arn>/shards/*]`
 *   before synthesis, `…[Resource::Shoal-dev-Data:ExportsOutputFnGetAttData…/shards/*]` during it),
 *   which no exact id can name stably. Patterns match whole finding ids, and only under their construct.
 *
 * `ShoalNagChecks` is the policy-validation plugin app.ts installs (an unacknowledged finding fails
 * `cdk synth`); `nagFindings(root)` gives the tests the same verdict.
 *
 * cdk-nag is CommonJS whose named exports Node's ESM loader cannot detect statically: its classes
 * are taken from the default export (module.exports).
 */
import {
  Validations,
  type IPolicyValidationContext,
  type IPolicyValidationPlugin,
  type PolicyValidationPluginReport,
  type PolicyViolation,
} from 'aws-cdk-lib';
import cdkNag from 'cdk-nag';
import type { IConstruct } from 'constructs';

export const { AwsSolutionsChecks } = cdkNag;

export interface FindingAcknowledgment {
  /** Matched against the whole finding id, e.g. `AwsSolutions-IAM5[Resource::*]`. */
  pattern: RegExp;
  reason: string;
}

const PATTERNS_KEY = 'shoal:nag-acknowledged-patterns';
const patterns = new WeakMap<IConstruct, FindingAcknowledgment[]>();

/** Acknowledges one rule (exact id) on a construct and everything below it. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** Acknowledges the findings whose id matches a pattern, on a construct and everything below it. */
export function acknowledgeFindings(scope: IConstruct, rules: FindingAcknowledgment[]): void {
  patterns.set(scope, [...(patterns.get(scope) ?? []), ...rules]);
  // Also in the construct metadata (and so in the cloud assembly's manifest), for the audit trail.
  for (const r of rules) scope.node.addMetadata(PATTERNS_KEY, { pattern: r.pattern.source, reason: r.reason });
}

function acknowledgedByPattern(node: IConstruct | undefined, ruleName: string): boolean {
  for (let c = node; c; c = c.node.scope) {
    if (patterns.get(c)?.some((r) => r.pattern.test(ruleName))) return true;
  }
  return false;
}

function filterReport(root: IConstruct, report: PolicyValidationPluginReport): PolicyValidationPluginReport {
  const byPath = new Map(root.node.findAll().map((c) => [c.node.path, c] as const));
  const violations: PolicyViolation[] = [];
  for (const v of report.violations) {
    const remaining = v.violatingResources.filter(
      (r) => !acknowledgedByPattern(r.constructPath ? byPath.get(r.constructPath) : undefined, v.ruleName),
    );
    if (remaining.length > 0) violations.push({ ...v, violatingResources: remaining });
  }
  return { ...report, success: violations.length === 0, violations };
}

/** The AwsSolutions findings under `root` that no acknowledgment covers (empty = clean). */
export function nagFindings(root: IConstruct): PolicyViolation[] {
  return filterReport(root, new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(root)).violations;
}

/** AwsSolutions checks with Shoal's pattern acknowledgments, as a CDK policy-validation plugin. */
export class ShoalNagChecks implements IPolicyValidationPlugin {
  readonly name = 'AwsSolutions';
  private readonly pack = new AwsSolutionsChecks(undefined, { verbose: true });

  validate(context: IPolicyValidationContext): PolicyValidationPluginReport {
    const root = (context as IPolicyValidationContext & { appConstruct?: IConstruct }).appConstruct;
    if (!root) throw new Error('cdk-nag needs the construct tree on the validation context (aws-cdk-lib too old?)');
    return filterReport(root, this.pack.validateScope(root));
  }
}
