/** cqseg models: EfficientNet and ResNet encoders as smp builds them, smp's U-Net, weight import. */
export * from './registry';
export { EfficientNetEncoder, MBConvBlock, Conv2dStaticSame, decodeBlock, roundFilters, roundRepeats, samePadding, dropConnect, EFFICIENTNET_BLOCKS, EFFICIENTNET_SCALING } from './efficientnet';
export type { BlockSpec, EfficientNetConfig } from './efficientnet';
export { ResNetEncoder, BasicBlock, Bottleneck, RESNET_SPECS } from './resnet';
export { UnetDecoder, DecoderBlock } from './unet/decoder';
export { Unet, createUnet } from './unet/model';
export type { UnetOptions, PadOptions } from './unet/model';
export * from './weights';
export * from './spec';
export { TinyUnet } from './tiny_unet';
