// The CDK app: `npx cdk deploy --all -c stage=prod -c twilioFromNumber=+1…` (see the README, "Deploy").
// Every parameter is CDK context; lib/config.ts lists them, with their defaults.

import { App } from 'aws-cdk-lib';
import { readConfig } from '../lib/config.ts';
import { buildDialgate } from '../lib/dialgate-app.ts';

const app = new App();
buildDialgate(app, readConfig(app.node));
app.synth();
