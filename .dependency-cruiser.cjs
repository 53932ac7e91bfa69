// Import rules of docs/design.md ("Layout and import rules"), checked in `npm test`.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'Import cycles make start-up order and mocking fragile.', from: {}, to: { circular: true } },
    { name: 'common-is-a-leaf', severity: 'error', comment: 'common/ is shared by both sides and imports neither.', from: { path: '^common/' }, to: { path: '^(coordinator|worker|cli)/' } },
    { name: 'coordinator-not-worker', severity: 'error', from: { path: '^coordinator/' }, to: { path: '^(worker|cli)/' } },
    { name: 'worker-not-coordinator', severity: 'error', from: { path: '^worker/' }, to: { path: '^(coordinator|cli)/' } },
    { name: 'aggregation-is-a-library', severity: 'error', comment: 'The aggregator library (public API) stands on common/ alone.', from: { path: '^coordinator/aggregation/' }, to: { path: '^coordinator/', pathNot: '^coordinator/aggregation/' } },
    { name: 'errors-know-no-transport', severity: 'error', comment: 'The error taxonomy is mapped to gRPC in common/grpc-status.ts, not defined in its terms.', from: { path: '^common/errors\\.ts$' }, to: { path: 'node_modules/@grpc/' } },
    { name: 'product-not-test', severity: 'error', comment: 'Product code never imports test helpers.', from: { pathNot: '^(test|bench)/' }, to: { path: '^(test|bench)/' } },
    { name: 'no-unresolvable', severity: 'error', from: {}, to: { couldNotResolve: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    // Resolve package `exports` maps (csv-parse/sync, ...) the way Node does.
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
