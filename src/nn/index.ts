/** cqseg nn layer: Module, layers, optimizers, safetensors state dicts. */
export { Module, StateDictError } from './module';
export type { LoadResult } from './module';
export * from './layers';
export { Activated, UpsampledCat, Scaled, upsampledCat, scaled } from './fused';
export type { Activation, ConvInput } from './fused';
export * from './optim';
export { readSafetensors, writeSafetensors, inspectSafetensors, SafetensorsError, WeightsError, assertFinite, firstNonFinite } from './safetensors';
export { readWeightsFile, inspectWeightsFile, weightsFormat, CONTAINER_KEYS } from './weights_file';
export type { WeightsFile, WeightsFormat } from './weights_file';
export type { SafetensorsFile, SafetensorsInfo } from './safetensors';
export { saveStateDict, loadStateDict } from './checkpoint';
