// Every aggregation method, one file each. Adding a method: write methods/<name>.ts exporting
// an AggregatorDefinition, and export (only) that definition here.
export { alignedMtl } from './aligned-mtl.js';
export { cagrad } from './cagrad.js';
export { dbMtl } from './db-mtl.js';
export { dualproj } from './dualproj.js';
export { dwa } from './dwa.js';
export { famo } from './famo.js';
export { gradnorm } from './gradnorm.js';
export { gradvac } from './gradvac.js';
export { imtlG } from './imtl-g.js';
export { mean } from './mean.js';
export { mgda } from './mgda.js';
export { nashMtl } from './nash-mtl.js';
export { pcgrad } from './pcgrad.js';
export { rlw } from './rlw.js';
export { sum } from './sum.js';
export { upgrad } from './upgrad.js';
export { uw } from './uw.js';
