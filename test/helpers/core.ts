/** Re-exports used by tests that reach below the public API. */
export { native } from '../../src/tensor/native';
export { dispose, keep, memory } from '../../src/tensor';
