/**
 * The real-kernel backend (optional): memfd shared memory viewed from JS and
 * the real async uffd-wp + PAGEMAP_SCAN tracker, through the optional `koffi`
 * dependency. probeLinuxWp() says whether this process can use it.
 */
export * from './linux-memory.js';
export { errnoName } from './libc.js';
export * from './concurrent-check.js';
