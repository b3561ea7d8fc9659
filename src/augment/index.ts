/** cqseg augmentations: batched geometric, photometric and degradation transforms with replayable draws. */
export type { AugmentInputs, AugmentOutputs, Effect, ImageSize, Transform } from './common';
export { reflect101Indices } from './common';
export {
  Geometric, HorizontalFlip, Shear, ShiftScaleRotate, ElasticTransform, warp, compose, invert, gaussianKernel1d, IDENTITY,
} from './geometric';
export type { Affine, GeometricOptions, GeometricParams, PerSample, ShearParams, ShiftScaleRotateParams, ElasticParams, InterpolationMode, WarpOptions } from './geometric';
export { ColorQuality, Blur, Sharpen, GaussNoise, RandomBrightnessContrast, RgbShift, PhotometricTransform } from './photometric';
export type { ColorQualityOptions, ColorQualityParams, BlurParams, SharpenParams, GaussNoiseParams, BrightnessContrastParams, RgbShiftParams } from './photometric';
export { degrade, jpegRoundTrip } from './degrade';
export type { DegradeOptions } from './degrade';
export { AugmentAll, CqgPair, run, geometric, colorQuality, all, cqgPair, disposeOutputs } from './pipelines';
export type { PipelineOptions, PipelineParams, CqgPairOutputs } from './pipelines';
