/** A model as a run's config.json describes it, and the model it builds. */
import { Unet } from './unet/model';

export interface ModelSpec {
  arch: 'unet';
  encoder: string;
  classes: number;
  decoderChannels?: number[];
}

export function buildModel(spec: ModelSpec): Unet {
  return new Unet({ encoderName: spec.encoder, classes: spec.classes, decoderChannels: spec.decoderChannels });
}
