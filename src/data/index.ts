/** cqseg data layer: image/mask I/O, class maps, datasets (folder, COCO, lists, descriptions/pairs), checks, loader, synthetic benchmark. */
export * from './image_io';
export * from './classes';
export * from './dataset';
export * from './folder';
export * from './coco';
export * from './list';
export * from './pairing';
export * from './open';
export * from './split';
export * from './check';
export * from './loader';
export * from './synth';
