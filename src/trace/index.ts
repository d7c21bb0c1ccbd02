export * from './format.js';
export * from './errors.js';
export { compactData, dataLength, materialize, randomBytes } from './data.js';
export * from './writer.js';
export * from './reader.js';
export * from './source.js';
export * from './record.js';
export * from './strategy.js';
export * from './replay.js';
