/**
 * vgpu-dirty/testing: what an integration test of coherent-memory emulation
 * needs — an in-process device and a connected driver with bounded waits,
 * waitFor, and expectCoherent with a readable failure.
 */
export { startTestRig, type TestRig, type TestRigOptions } from './rig.js';
export { waitFor, WaitTimeoutError, type WaitOptions } from './wait-for.js';
export { expectCoherent, readOverWire, CoherenceError, type DeviceBytes } from './coherence.js';
export { startDevice, type Device, type DeviceOptions } from '../../device/index.js';
