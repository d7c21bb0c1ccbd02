import type { DirtyConfig } from '../config.js';
import { BoDirtyTracker } from '../dirty-tracker.js';
import type { DirtyStrategy } from './contract.js';

/**
 * The three strategies of the vmwgfx tracker (dirty-tracker.ts): `adaptive`
 * is the kernel's (start by BO size, switch between the methods by vote);
 * `pagetable` and `mkwrite` pin one method by the config alone.
 */
function vmwgfx(name: string, description: string, pin: Partial<DirtyConfig>): DirtyStrategy {
  return {
    name,
    description,
    backing: 'device',
    createTracker: (bo, env) => BoDirtyTracker.create(bo, { ...env.config, ...pin }),
  };
}

export const adaptiveStrategy = vmwgfx(
  'adaptive',
  'the kernel\'s vmwgfx tracker: PAGETABLE below 512 pages, MKWRITE above, switching by vote',
  {},
);

export const pagetableStrategy = vmwgfx(
  'pagetable',
  'writable PTEs, hardware dirty bits cleaned and recorded at every scan (never switches)',
  { mkwriteThresholdPages: Infinity, changeTriggers: Infinity },
);

export const mkwriteStrategy = vmwgfx(
  'mkwrite',
  'read-only PTEs, page_mkwrite records the first write, scans write-protect again (never switches)',
  { mkwriteThresholdPages: 0, changeTriggers: Infinity },
);
