/** Builds the Shoal stacks for one stage into an app (used by app.ts and the infra tests). */
import type { App } from 'aws-cdk-lib';
import { readSettings, type ShoalSettings } from './settings.js';
import { DataStack } from './stacks/data-stack.js';
import { ServiceStack } from './stacks/service-stack.js';

export interface ShoalStacks {
  settings: ShoalSettings;
  data: DataStack;
  service: ServiceStack;
}

export function createShoal(app: App): ShoalStacks {
  const settings = readSettings(app.node);
  const prod = settings.stage === 'prod';
  const name = `Shoal-${settings.stage}`;
  const data = new DataStack(app, `${name}-Data`, {
    settings,
    description: `Shoal ${settings.stage}: bucket, tables, queues (stateful)`,
    terminationProtection: prod,
  });
  const service = new ServiceStack(app, `${name}-Service`, {
    settings,
    data,
    description: `Shoal ${settings.stage}: functions, HTTP API, dashboard and alarms (stateless)`,
  });
  return { settings, data, service };
}
