/** DCIN: reference selection (GRIS, LRIS), embedders, the reference bank, ensembles, prediction. */
export { grisSelect, grisFromSource, histogramsFromSource } from './gris';
export type { ImageSource, GrisOptions, GrisResult, HistogramStreamOptions } from './gris';
export { lrisSelect, LrisIndex, normalizeEmbeddings } from './lris';
export type { LrisResult } from './lris';
export { EncoderEmbedder, OnnxEmbedder, preprocessImages, fileSha256 } from './embedders';
export type { Embedder, FeatureEncoder, OnnxConfig, Preprocess } from './embedders';
export { ensemble, meanEntropy, selectByEntropy } from './ensemble';
export type { EnsembleMode } from './ensemble';
export { buildBank, saveBank, loadBank, disposeBank, BankError, BANK_FORMAT, BANK_VERSION } from './bank';
export type { ReferenceBank, BankImage, BuildOptions, LoadBankOptions } from './bank';
export { dcinPredict, dcinPredictMany, DCIN_MODES } from './predict';
export type { DcinMode, DcinOptions, DcinResult, DcinColumnSpec } from './predict';
