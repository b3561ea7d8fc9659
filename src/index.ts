/**
 * cqseg's public entry point (package.json "main"): each layer as a namespace, in the
 * order they build on each other (ARCHITECTURE.md):
 *   random   the one seeded generator and its named streams (util/random.ts)
 *   tensor   libtorch tensors, autograd, memory scopes (the native addon's only caller)
 *   nn       modules, layers, optimisers, safetensors
 *   augment  the paper's geometric and color-quality augmentations, CQG's view pairs
 *   color    Lab conversion, Reinhard transfer, RGB histograms
 *   data     image I/O, datasets (folders, COCO, descriptions), loaders, synthetic data
 *   models   U-Net with EfficientNet and ResNet encoders, weights, preprocessing
 *   train    losses (DiceCE, CQG), the trainer and its config, run folders (runs)
 *   dcin     GRIS, LRIS, ExRI, ensembles, auto, OOD distances, test-time adaptation
 *   evaluation  Dice and IoU (torchmetrics' convention), bootstrap intervals
 *   experiment  the paper's grid: train, bank, evaluate, report
 *
 *   import { tensor as T, models, dcin } from 'cqseg';
 */
export * as random from './util/random';
export * as tensor from './tensor';
export * as nn from './nn';
export * as augment from './augment';
export * as color from './color';
export * as data from './data';
export * as models from './models';
export * as train from './train/trainer';
export * as trainConfig from './train/config';
export * as runs from './train/run';
export * as losses from './train/losses';
export * as dcin from './dcin';
export * as evaluation from './eval/evaluate';
export * as metrics from './eval/metrics';
export * as experiment from './experiment/runner';
export * as experimentConfig from './experiment/config';
