/**
 * The Shoal CDK app. `npx cdk synth -c stage=dev|prod [-c searchSlots=4] [-c alarmEmail=...]`.
 *
 * Offline by construction: the stacks are environment-agnostic (account and region stay tokens
 * resolved by CloudFormation at deploy time), nothing calls `fromLookup`, so synthesis needs neither
 * credentials nor network. `cdk deploy` takes the account and region from the caller's credentials.
 *
 * cdk-nag (AwsSolutions) runs as a policy-validation plugin on every synth: an unacknowledged
 * finding fails `cdk synth`, so CI's synth is also the nag gate.
 */
import { App, Tags, Validations } from 'aws-cdk-lib';
import { ShoalNagChecks } from './nag.js';
import { createShoal } from './shoal.js';

const app = new App();
const { settings } = createShoal(app);
Tags.of(app).add('project', 'shoal');
Tags.of(app).add('stage', settings.stage);
Validations.of(app).addPlugins(new ShoalNagChecks());
app.synth();
