// The web console in AWS: its static files (clients/console/site) in a private S3 bucket, and one
// CloudFront distribution that serves them at `/` and sends `/runs*` to the REST API. Page and API
// share an origin, so the browser needs no CORS, and the console calls the API exactly as it does on
// the local stack. The API must be in API-key mode (-c apiAuth=apiKey): a browser cannot sign SigV4
// requests without AWS credentials; the person enters the key in the page (README, "Signing in: the API key").
//
// Added by the stateless stack in API-key mode.

import { readFileSync } from 'node:fs';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
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
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { BucketDeployment, Source } from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import {
  CONSOLE_PACKAGE_FILES,
  CONSOLE_SECURITY_HEADERS,
  CONSOLE_SITE_DIR,
  REFERENCE_PAGE,
  REFERENCE_SECURITY_HEADERS,
} from '../../clients/console/site-definition.ts';
import { OPENAPI_PATH } from '../../lambdas/definitions/public-routes.ts';
import { managedPolicyFinding, wildcardResourceFinding } from '../nag-findings.ts';

export interface ConsoleSiteProps {
  /** The runs API; CloudFront forwards `/runs*` to its deployment stage. */
  api: RestApi;
  /** DESTROY outside prod: the bucket holds only files the next deploy puts back. */
  removalPolicy: RemovalPolicy;
  /** How long the file copier's logs are kept: the stage's retention, as for the functions. */
  logRetention: RetentionDays;
}

export class ConsoleSite extends Construct {
  readonly bucket: Bucket;
  readonly distribution: Distribution;
  /** The console's address (CloudFront's domain); the API is served under it too, at /runs. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: ConsoleSiteProps) {
    super(scope, id);

    this.bucket = new Bucket(this, 'Files', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL, // read by CloudFront only (origin access control)
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      removalPolicy: props.removalPolicy,
      autoDeleteObjects: props.removalPolicy === RemovalPolicy.DESTROY,
    });

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
      logGroup: new LogGroup(this, 'DeployLogs', {
        retention: props.logRetention,
        removalPolicy: props.removalPolicy,
      }),
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
    }

    this.url = `https://${this.distribution.distributionDomainName}/`;

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
