// The runs API: a regional REST API in front of the api function, with its stage (access logs,
// tracing, throttling), the request model and validator, every route, the public OpenAPI document,
// and in API-key mode (-c apiAuth=apiKey) the throttled usage plan and its key.
//
// Built in the scope it is given (the stateless stack), not in a construct of its own: a construct in
// between would put its id into every logical id below, and CloudFormation would replace the deployed
// API (a new URL, a new API key value). test/infra/stateless-ids.test.ts pins those ids.

import { CfnOutput, Validations } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  JsonSchemaType,
  JsonSchemaVersion,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  ResponseType,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { ManagedPolicy } from 'aws-cdk-lib/aws-iam';
import { CfnPermission } from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { OPENAPI_PATH } from '../lambdas/definitions/public-routes.ts';
import type { DialgateConfig } from './config.ts';
import type { DialgateFunction } from './constructs/dialgate-function.ts';
import { type LogSettings, stageLogGroup } from './constructs/logs.ts';
import { acknowledgeControl } from './control-tower.ts';
import { managedPolicyFinding } from './nag-findings.ts';

/** Per stage, for every client together; a run is one POST, so this bounds polling, not calling. */
const API_THROTTLE = { rateLimit: 50, burstLimit: 100 };

export interface RestApiProps {
  /** The stage names the API, its stage and its usage plan; `apiAuth` picks IAM or API keys. */
  readonly config: Pick<DialgateConfig, 'stage' | 'apiAuth'>;
  /** The api function: every route is integrated with it. */
  readonly handler: DialgateFunction;
  /** The stage's log settings, for the access log group. */
  readonly logs: LogSettings;
}

/**
 * Adds the runs API to `scope` and returns it. In API-key mode it also adds the `ApiKeyId` output
 * (the key's value is generated at deploy time; only its id is in the template).
 */
export function restApi(scope: Construct, { config, handler, logs }: RestApiProps): RestApi {
  const iam = config.apiAuth === 'iam';
  const accessLogs = stageLogGroup(scope, 'ApiAccessLogs', logs);
  const api = new RestApi(scope, 'Api', {
    restApiName: `dialgate-${config.stage}`,
    description: 'dialgate runs API',
    endpointConfiguration: { types: [EndpointType.REGIONAL] },
    // Access and execution logs need the account's API Gateway CloudWatch role; this sets it.
    cloudWatchRole: true,
    deployOptions: {
      stageName: config.stage,
      accessLogDestination: new LogGroupLogDestination(accessLogs),
      accessLogFormat: AccessLogFormat.jsonWithStandardFields({
        caller: true,
        httpMethod: true,
        ip: true,
        protocol: true,
        requestTime: true,
        resourcePath: true,
        responseLength: true,
        status: true,
        user: true,
      }),
      loggingLevel: MethodLoggingLevel.ERROR,
      dataTraceEnabled: false, // request bodies are lists of phone numbers: never logged whole
      tracingEnabled: true,
      metricsEnabled: true,
      throttlingRateLimit: API_THROTTLE.rateLimit,
      throttlingBurstLimit: API_THROTTLE.burstLimit,
    },
    defaultMethodOptions: iam
      ? { authorizationType: AuthorizationType.IAM }
      : { authorizationType: AuthorizationType.NONE, apiKeyRequired: true },
  });

  // Only the shape is checked here; the function reports each bad row with its field and index.
  const runRequest = api.addModel('RunRequest', {
    contentType: 'application/json',
    modelName: 'RunRequest',
    schema: {
      schema: JsonSchemaVersion.DRAFT4,
      title: 'RunRequest',
      type: JsonSchemaType.OBJECT,
      // The leads themselves, or another run's by outcome (`from_run`).
      properties: { leads: { type: JsonSchemaType.ARRAY }, from_run: { type: JsonSchemaType.OBJECT } },
      anyOf: [{ required: ['leads'] }, { required: ['from_run'] }],
    },
  });
  const validator = api.addRequestValidator('Validator', {
    validateRequestBody: true,
    validateRequestParameters: true,
  });
  // The same error shape as the function's own 400s (lambdas/handlers/http.ts).
  api.addGatewayResponse('InvalidBody', {
    type: ResponseType.BAD_REQUEST_BODY,
    statusCode: '400',
    templates: {
      'application/json': JSON.stringify({
        error: {
          code: 'invalid_request',
          message: 'The request body must be a JSON object with a "leads" array or a "from_run" object.',
          details: [{ field: 'body', message: 'expected a JSON object with "leads" or "from_run"' }],
        },
      }),
    },
  });

  const integration = new LambdaIntegration(handler, { allowTestInvoke: false });
  const runs = api.root.addResource('runs');
  runs.addMethod('POST', integration, {
    requestValidator: validator,
    requestModels: { 'application/json': runRequest },
  });
  runs.addMethod('GET', integration, { requestValidator: validator }); // list, newest first
  // Per run: progress, the controls (pause/resume/cancel), appended leads (JSON or CSV), its calls.
  const run = runs.addResource('{run_id}');
  const perRun = { requestValidator: validator, requestParameters: { 'method.request.path.run_id': true } };
  run.addMethod('GET', integration, perRun);
  for (const control of ['pause', 'resume', 'cancel'])
    run.addResource(control).addMethod('POST', integration, perRun);
  run.addResource('leads').addMethod('POST', integration, perRun);
  run.addResource('calls').addMethod('GET', integration, perRun);
  // The suppression list: pages and a CSV import; one number read, added or removed.
  const suppressions = api.root.addResource('suppressions');
  suppressions.addMethod('GET', integration, { requestValidator: validator });
  suppressions.addMethod('POST', integration, { requestValidator: validator });
  const suppression = suppressions.addResource('{phone}');
  const perPhone = {
    requestValidator: validator,
    requestParameters: { 'method.request.path.phone': true },
  };
  for (const method of ['GET', 'PUT', 'DELETE']) suppression.addMethod(method, integration, perPhone);
  // The OpenAPI document is public: it describes the API and holds no data, and code generators,
  // gateways and the console's reference page fetch it before they have credentials. The stage's
  // throttling still applies, and the function answers it from its bundle (no table, no queue).
  const openApi = api.root
    .addResource(OPENAPI_PATH.slice(1))
    .addMethod('GET', integration, { authorizationType: AuthorizationType.NONE, apiKeyRequired: false });
  // API Gateway's permission to invoke the function, one per method: scoped to that method of this
  // API by SourceArn, an ARN joined from the API's id, which the control reads as neither a literal
  // nor a reference.
  for (const permission of api.node.findAll().filter((c) => c instanceof CfnPermission)) {
    acknowledgeControl(
      permission,
      'CT.LAMBDA.PR.2',
      'API Gateway may invoke the function only for this method of this API: SourceArn is the ' +
        'method’s execute-api ARN (joined from the API id, so the rule sees neither a string nor a reference).',
    );
  }
  Validations.of(openApi).acknowledge({
    id: 'AwsSolutions-APIG4',
    reason:
      'GET /openapi.json is the API’s public description (no data, no side effect); every other method ' +
      'is authenticated.',
  });

  Validations.of(api).acknowledge(
    {
      id: 'AwsSolutions-APIG3',
      reason:
        'No WAF: every method is authenticated (IAM or API key), the stage is throttled, and the request ' +
        'bodies are validated; a web ACL can be associated with the stage by the operator.',
    },
    {
      id: 'AwsSolutions-COG4',
      reason:
        'Callers are services and operators with AWS credentials (IAM, SigV4) or an API key, not end users ' +
        'in a Cognito user pool.',
    },
    {
      id: managedPolicyFinding(
        api,
        ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')
          .managedPolicyArn,
      ),
      reason:
        "API Gateway's account-wide CloudWatch role uses the AWS managed policy made for exactly that; " +
        'it is what access and execution logging require.',
    },
  );

  if (!iam) {
    Validations.of(api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'The operator chose -c apiAuth=apiKey: every method requires an API key bound to a throttled ' +
        'usage plan (the default, -c apiAuth=iam, uses IAM authorization).',
    });
    const plan = api.addUsagePlan('UsagePlan', {
      name: `dialgate-${config.stage}`,
      throttle: { rateLimit: API_THROTTLE.rateLimit, burstLimit: API_THROTTLE.burstLimit },
      apiStages: [{ api, stage: api.deploymentStage }],
    });
    // The key's value is generated by API Gateway at deploy time; the template only has its id.
    const key = api.addApiKey('ApiKey', { description: `dialgate ${config.stage} client` });
    plan.addApiKey(key);
    new CfnOutput(scope, 'ApiKeyId', { value: key.keyId });
  }
  return api;
}
