/** cqseg nn layer: Module, layers, optimizers, safetensors state dicts. */
export { Module, StateDictError } from './module';
export type { LoadResult } from './module';
export * from './layers';
export { Activated, UpsampledCat, Scaled, upsampledCat, scaled } from './fused';
export type { Activation, ConvInput } from './fused';
export * from './optim';
export { readSafetensors, writeSafetensors, inspectSafetensors, SafetensorsError, assertFinite, firstNonFinite } from './safetensors';
export type { SafetensorsFile, SafetensorsInfo } from './safetensors';
export { saveStateDict, loadStateDict } from './checkpoint';
