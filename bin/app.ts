// The CDK app: `npx cdk deploy --all -c stage=prod -c twilioFromNumber=+1…` (see the README, "Deploy").
// Every parameter is CDK context; lib/dialgate-app.ts lists them, with their defaults.

import { App } from 'aws-cdk-lib';
import { buildDialgate, readConfig } from '../lib/dialgate-app.ts';

const app = new App();
buildDialgate(app, readConfig(app.node));
app.synth();
