// Every conformance case, in the order they run (cheap and fundamental first).
import type { Case } from '../case.js';
import { atomicityCases } from './atomicity.js';
import { backpressureCases } from './backpressure.js';
import { commandCases } from './commands.js';
import { encodingCases } from './encoding.js';
import { errorCases } from './errors.js';
import { featureCases } from './features.js';
import { fenceCases } from './fences.js';
import { handshakeCases } from './handshake.js';
import { isolationCases } from './isolation.js';
import { limitCases } from './limits.js';
import { readbackCases } from './readback.js';
import { seenCases } from './seen.js';
import { sequenceCases } from './sequence.js';
import { spanCases } from './spans.js';

export const ALL_CASES: readonly Case[] = [
  ...handshakeCases,
  ...encodingCases,
  ...sequenceCases,
  ...fenceCases,
  ...commandCases,
  ...featureCases,
  ...atomicityCases,
  ...readbackCases,
  ...seenCases,
  ...spanCases,
  ...errorCases,
  ...isolationCases,
  ...limitCases,
  ...backpressureCases,
];
