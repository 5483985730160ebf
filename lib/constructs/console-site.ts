// The web console in AWS: its static files (clients/console/site) in a private S3 bucket, and one
// CloudFront distribution that serves them at `/` and sends `/runs*` to the REST API. Page and API
// share an origin, so the browser needs no CORS, and the console calls the API exactly as it does on
// the local stack. The API must be in API-key mode (-c apiAuth=apiKey): a browser cannot sign SigV4
// requests without AWS credentials; the person enters the key in the page (README, "Signing in: the API key").
//
// Added by the stateless stack in API-key mode.

import { readFileSync } from 'node:fs';
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  HeadersFrameOption,
  HeadersReferrerPolicy,
  OriginRequestPolicy,
  ResponseHeadersPolicy,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { RestApiOrigin, S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import { ManagedPolicy } from 'aws-cdk-lib/aws-iam';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { BucketDeployment, Source } from 'aws-cdk-lib/aws-s3-deployment';
import { Construct, type IConstruct } from 'constructs';
import {
  CONSOLE_PACKAGE_FILES,
  CONSOLE_SECURITY_HEADERS,
  CONSOLE_SITE_DIR,
  REFERENCE_PAGE,
  REFERENCE_SECURITY_HEADERS,
} from '../../clients/console/site-definition.ts';
import { OPENAPI_PATH } from '../../lambdas/definitions/public-routes.ts';
import { acknowledgeControl } from '../control-tower.ts';
import { managedPolicyFinding, wildcardResourceFinding } from '../nag-findings.ts';
import { type LogSettings, stageLogGroup } from './logs.ts';

export interface ConsoleSiteProps {
  /** The runs API; CloudFront forwards `/runs*` to its deployment stage. */
  api: RestApi;
  /**
   * The stage's log settings, for the file copier's logs; their removal policy is the bucket's too
   * (DESTROY outside prod: the bucket holds only files the next deploy puts back).
   */
  logs: LogSettings;
}

export class ConsoleSite extends Construct {
  readonly bucket: Bucket;
  readonly distribution: Distribution;
  /** The console's address (CloudFront's domain); the API is served under it too, at /runs. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: ConsoleSiteProps) {
    super(scope, id);
    const { removalPolicy } = props.logs;

    this.bucket = new Bucket(this, 'Files', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL, // read by CloudFront only (origin access control)
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      // A deploy replaces the files; the ones it replaced stay a while, to roll back or to see what
      // was served when.
      versioned: true,
      lifecycleRules: [
        {
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy,
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });
    // CDK's function that empties the bucket when the stack is deleted (one per stack, outside this construct).
    const emptier = Stack.of(this).node.tryFindChild('Custom::S3AutoDeleteObjectsCustomResourceProvider');
    if (emptier) {
      acknowledgeControl(
        emptier,
        'CT.LAMBDA.PR.3',
        'CDK’s function that empties the console’s bucket when the stack is deleted calls S3 only: nothing ' +
          'private to reach, so no VPC.',
      );
    }

    // The same headers the local stack sends (clients/console/site-definition.ts): own scripts only, no framing.
    const securityHeaders = (id: string, csp: string) =>
      new ResponseHeadersPolicy(this, id, {
        securityHeadersBehavior: {
          contentSecurityPolicy: { contentSecurityPolicy: csp, override: true },
          contentTypeOptions: { override: true },
          frameOptions: { frameOption: HeadersFrameOption.DENY, override: true },
          referrerPolicy: { referrerPolicy: HeadersReferrerPolicy.NO_REFERRER, override: true },
          strictTransportSecurity: { accessControlMaxAge: Duration.days(365), override: true },
        },
      });
    const headers = securityHeaders('Headers', CONSOLE_SECURITY_HEADERS['content-security-policy']!);
    const apiOrigin = new RestApiOrigin(props.api);

    this.distribution = new Distribution(this, 'Distribution', {
      comment: 'dialgate console and API',
      defaultRootObject: 'index.html',
      defaultBehavior: {
        origin: S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        responseHeadersPolicy: headers,
        cachePolicy: CachePolicy.CACHING_OPTIMIZED,
      },
      additionalBehaviors: {
        // Never cached, every method, and the viewer's headers (x-api-key, content-type) passed on.
        '/runs*': {
          origin: apiOrigin,
          viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
          allowedMethods: AllowedMethods.ALLOW_ALL,
          cachePolicy: CachePolicy.CACHING_DISABLED,
          originRequestPolicy: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        },
        // The API's public OpenAPI document, which the reference page renders; fresh after each deploy.
        [OPENAPI_PATH]: {
          origin: apiOrigin,
          viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
          cachePolicy: CachePolicy.CACHING_DISABLED,
        },
        // The reference page: Redoc writes inline styles (see REFERENCE_SECURITY_HEADERS).
        [`/${REFERENCE_PAGE}`]: {
          origin: S3BucketOrigin.withOriginAccessControl(this.bucket),
          viewerProtocolPolicy: ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
          responseHeadersPolicy: securityHeaders(
            'ReferenceHeaders',
            REFERENCE_SECURITY_HEADERS['content-security-policy']!,
          ),
          cachePolicy: CachePolicy.CACHING_OPTIMIZED,
        },
      },
    });

    // The site's files as a file asset of its own (what Source.asset makes inside the deployment), so
    // that the acknowledgement below can name the asset bucket the copier reads.
    const files = new Asset(this, 'SiteFiles', { path: CONSOLE_SITE_DIR });
    const deployment = new BucketDeployment(this, 'Deploy', {
      sources: [
        Source.bucket(files.bucket, files.s3ObjectKey),
        // Files an npm package ships (Redoc's bundle), deployed from node_modules, never from a CDN.
        ...Object.entries(CONSOLE_PACKAGE_FILES).map(([key, file]) =>
          Source.data(key, readFileSync(file, 'utf8')),
        ),
      ],
      destinationBucket: this.bucket,
      // A deploy replaces the files and invalidates the cached copies, so the new console shows at once.
      distribution: this.distribution,
      distributionPaths: ['/*'],
      memoryLimit: 256,
      // Its own log group, under the stage's retention and removal policy like every other one.
      logGroup: stageLogGroup(this, 'DeployLogs', props.logs),
    });

    // CDK's own copier (one function per stack, outside this construct): what it needs, as CDK grants it.
    // The findings that name resources are computed from them: the asset bucket's name holds the
    // account and region, spelled as tokens or as values depending on how the app is synthesized.
    const copier = deployment.handlerRole.node.scope;
    if (copier) {
      const basicExecution = ManagedPolicy.fromAwsManagedPolicyName(
        'service-role/AWSLambdaBasicExecutionRole',
      );
      Validations.of(copier).acknowledge(
        {
          id: managedPolicyFinding(copier, basicExecution.managedPolicyArn),
          reason:
            'CDK’s BucketDeployment function writes its logs with the AWS managed basic execution policy.',
        },
        ...[
          'AwsSolutions-IAM5[Action::s3:GetObject*]',
          'AwsSolutions-IAM5[Action::s3:GetBucket*]',
          'AwsSolutions-IAM5[Action::s3:List*]',
          'AwsSolutions-IAM5[Action::s3:DeleteObject*]',
          'AwsSolutions-IAM5[Action::s3:Abort*]',
          wildcardResourceFinding(copier, files.bucket.arnForObjects('*')),
          wildcardResourceFinding(copier, this.bucket.arnForObjects('*')),
          'AwsSolutions-IAM5[Resource::*]',
        ].map((id) => ({
          id,
          reason:
            'CDK’s BucketDeployment grants: read the asset bucket, replace the console’s files, and ' +
            'invalidate the distribution (CloudFront invalidations take no resource ARN).',
        })),
        {
          id: 'AwsSolutions-L1',
          reason:
            'The runtime of CDK’s BucketDeployment function is chosen by aws-cdk-lib, upgraded with it.',
        },
      );
      acknowledgeControl(
        copier,
        'CT.LAMBDA.PR.3',
        'CDK’s BucketDeployment function copies files between S3 buckets at deploy time: nothing private ' +
          'to reach, so no VPC.',
      );
    }

    this.url = `https://${this.distribution.distributionDomainName}/`;

    const controls: [target: IConstruct, control: string, reason: string][] = [
      [
        this.bucket,
        'CT.S3.PR.2',
        'No server access logs: the bucket holds the console’s static files, which CloudFront serves to ' +
          'anyone; API calls are logged by the API stage’s access logs.',
      ],
      [
        this.bucket,
        'CT.S3.PR.4',
        'No event notifications: only the deploy writes the console’s files, and nothing reacts to them.',
      ],
      [
        this.bucket,
        'CT.S3.PR.9',
        'No object lock: each deploy replaces and prunes the console’s files (kept 30 days as old versions).',
      ],
      [
        this.bucket,
        'CT.S3.PR.10',
        'SSE-S3, not SSE-KMS: the console’s files are public by design (CloudFront serves them to anyone); ' +
          'a customer managed key would protect nothing secret.',
      ],
      [
        this.distribution,
        'CT.CLOUDFRONT.PR.4',
        'No origin failover: one bucket of static files and the regional API behind /runs; a second origin ' +
          'would be a copy in another region for a console the API’s own region serves.',
      ],
      [
        this.distribution,
        'CT.CLOUDFRONT.PR.5',
        'No CloudFront access logs: static files carry no data; API calls are logged by the API stage’s ' +
          'access logs.',
      ],
      ...['CT.CLOUDFRONT.PR.6', 'CT.CLOUDFRONT.PR.7', 'CT.CLOUDFRONT.PR.9'].map(
        (control): [IConstruct, string, string] => [
          this.distribution,
          control,
          'The default *.cloudfront.net certificate, for which CloudFront sets the TLS policy and SNI itself ' +
            '(only a custom certificate takes them); a custom domain with its own certificate is the operator’s choice.',
        ],
      ),
    ];
    for (const [target, control, reason] of controls) acknowledgeControl(target, control, reason);

    Validations.of(this).acknowledge(
      {
        id: 'AwsSolutions-S1',
        reason: 'The bucket holds the console’s public static files only; CloudFront is the one reader.',
      },
      {
        id: 'AwsSolutions-CFR1',
        reason: 'Operators may work from anywhere; the API behind /runs requires an API key.',
      },
      {
        id: 'AwsSolutions-CFR2',
        reason:
          'Static files and an authenticated, throttled API; a web ACL can be attached by the operator.',
      },
      {
        id: 'AwsSolutions-CFR3',
        reason: 'API calls are logged by the API stage’s access logs; static file requests carry no data.',
      },
      {
        id: 'AwsSolutions-CFR4',
        reason:
          'The default *.cloudfront.net certificate; a custom domain with TLS 1.2 is the operator’s choice.',
      },
    );
  }
}
