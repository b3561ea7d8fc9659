/** DCIN: reference selection (GRIS, LRIS), embedders, the reference bank, OOD distances, ensembles and safe selection, prediction, test-time adaptation and the columns that combine them. */
export { grisSelect, grisFromSource, histogramsFromSource } from './gris';
export type { ImageSource, GrisOptions, GrisResult, HistogramStreamOptions } from './gris';
export { lrisSelect, LrisIndex, normalizeEmbeddings } from './lris';
export type { LrisResult } from './lris';
export { EncoderEmbedder, OnnxEmbedder, preprocessImages, fileSha256 } from './embedders';
export type { Embedder, FeatureEncoder, OnnxConfig, Preprocess } from './embedders';
export { ensemble, meanEntropy, selectByEntropy, selectSafe, labelAgreement, agreementScores } from './ensemble';
export type { EnsembleMode, SafeSelection } from './ensemble';
export { buildBank, saveBank, loadBank, disposeBank, BankError, BANK_FORMAT, BANK_VERSION, BANK_VERSIONS_READ } from './bank';
export type { ReferenceBank, BankImage, BuildOptions, LoadBankOptions } from './bank';
export { dcinPredict, dcinPredictMany, lrisNeighbours, DCIN_MODES, AUTO_CANDIDATES, AUTO_KEEP_MARGIN, ENTROPY_CANDIDATES } from './predict';
export type { DcinMode, DcinOptions, DcinResult, DcinColumnSpec, AutoResult, AutoCandidate } from './predict';
export { calibrateOod, oodScores, embeddingDistance, embeddingResolution, colorDistance, colorStandardisation, labFeatures, quantile, describeCalibration, oodReport, oodWarning, OOD_NOTES, OOD_METHOD, OOD_DEFAULT_K, OOD_DEFAULT_QUANTILE } from './ood';
export type { OodCalibration, OodComponentCalibration, OodScore, OodBank, OodReport, CalibrateOptions } from './ood';
export { adaBnDomain, adaBnDomainStats, withBnStats, adaBnImage, withAdaBnImage, flipTta, withFlipTta, bnLayers, ADABN_IMAGE_ALPHA, TTA_FLIPS } from './tta';
export type { Forward, Flip, BnStats, AdaBnHandle, AdaBnBatch, AdaBnDomainOptions, AdaBnImageOptions, AdaBnWeighting, FlipTtaOptions } from './tta';
export { parseColumn, parseColumns, columnTitle, predictColumns, domainBnStats, needsBank, needsDomainStats, DCIN_COLUMN_MODES, TTA_PARTS, TTA_COLUMNS, BANK_MODES, COLUMN_GRAMMAR } from './columns';
export type { Column, ColumnContext } from './columns';
