// The layers of docs/DESIGN.md ("Where things are"), checked by `npm run lint`.
// Rules name folders, not files, so they hold while files inside a layer are split or renamed.

// Packages that talk to AWS, Twilio or the Lambda runtime, or build infrastructure.
const OUTSIDE_WORLD = '^node_modules/(@aws-sdk|twilio|@middy|@aws-lambda-powertools|@types/aws-lambda)/';
const CDK = '^node_modules/(aws-cdk-lib|constructs|cdk-nag|aws-cdk|@cdklabs/cdk-validator-cfnguard)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-imports-no-edge',
      comment:
        'lambdas/core is the domain: it defines ports and never reaches an adapter or a handler (the adapters implement its ports; the handlers wire them).',
      severity: 'error',
      from: { path: '^lambdas/core/' },
      to: { path: '^lambdas/(adapters|handlers)/' },
    },
    {
      name: 'core-imports-no-aws-twilio-lambda',
      comment:
        'lambdas/core has no AWS SDK, Twilio, middy, Powertools, Lambda-type or CDK import: that is what keeps it testable with in-memory ports.',
      severity: 'error',
      from: { path: '^lambdas/core/' },
      to: { path: [OUTSIDE_WORLD, CDK] },
    },
    {
      name: 'lambdas-import-no-app-tools-clients',
      comment:
        'The functions are bundled alone: nothing under lambdas/ imports the CDK app (lib/), the tooling (tools/), the clients (clients/), the entry points (bin/) or the tests.',
      severity: 'error',
      from: { path: '^lambdas/' },
      to: { path: '^(lib|tools|clients|bin|test)/' },
    },
    {
      name: 'lambdas-import-no-cdk',
      comment: 'CDK is the deployment tool, never part of a function bundle.',
      severity: 'error',
      from: { path: '^lambdas/' },
      to: { path: CDK },
    },
    {
      name: 'app-imports-only-definitions',
      comment:
        'The CDK app (lib/) reads what it shares with the functions from lambdas/definitions only, never the domain, an adapter or a handler.',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^lambdas/(core|adapters|handlers)/' },
    },
    {
      name: 'app-imports-no-tools',
      comment: 'The CDK app deploys; the local stack, simulator, chaos and benchmarks are not part of it.',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^(tools|test)/' },
    },
    {
      name: 'definitions-import-nothing-above',
      comment:
        'lambdas/definitions is read by both the functions and the CDK app: it imports no core, adapter or handler code.',
      severity: 'error',
      from: { path: '^lambdas/definitions/' },
      to: { path: '^lambdas/(core|adapters|handlers)/' },
    },
    {
      name: 'definitions-import-no-cdk-sdk-twilio',
      comment:
        'lambdas/definitions is plain data and schemas: no CDK, AWS SDK, Twilio, middy or Powertools import, so either side can read it without pulling in the other.',
      severity: 'error',
      from: { path: '^lambdas/definitions/' },
      to: { path: [OUTSIDE_WORLD, CDK] },
    },
    {
      name: 'clients-import-no-adapters-handlers',
      comment:
        'The CLI and the console speak to dialgate over its HTTP API, never through its adapters or handlers.',
      severity: 'error',
      from: { path: '^clients/' },
      to: { path: '^lambdas/(adapters|handlers)/' },
    },
    {
      name: 'lambdas-import-no-dev-dependencies',
      comment:
        'A function bundle holds only production dependencies; type-only imports (e.g. @types/aws-lambda) leave no code.',
      severity: 'error',
      from: { path: '^lambdas/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-circular',
      comment: 'Import cycles make the load order matter and blur which layer depends on which.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to no file is a typo or a file that moved.',
      severity: 'error',
      from: {},
      // The API reference page's Redoc is served beside it from node_modules (clients/console/site-definition.ts).
      to: { couldNotResolve: true, pathNot: 'redoc\\.standalone\\.js$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^cdk\\.out/' },
    // The TypeScript compiler here (tsc 7) has no JS API, so dependency-cruiser reads .ts with swc.
    parser: 'swc',
    // swc reads the TypeScript source itself, so type-only imports are seen and count (a type from an
    // adapter in the core is still a leak); this option only concerns the tsc parser.
    tsPreCompilationDeps: false,
    moduleSystems: ['es6', 'cjs'],
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'types', 'default'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
