// Every aggregation method, one file each. Adding a method: write methods/<name>.ts exporting
// an AggregatorDefinition, and export it here.
export { mean } from './mean.js';
export { sum } from './sum.js';
