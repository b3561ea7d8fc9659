/** Color science for DCIN: RGB <-> Lab (OpenCV 8-bit and float), Lab color transfer, RGB histograms. */
export { rgbToLab, labToRgb, RgbToLab, LabToRgb, releaseColorTables } from './lab';
export type { Layout, LabOptions } from './lab';
export { labStats, labTransfer, labTransferToStats, LabTransfer, specularMask } from './transfer';
export type { TransferMode, LabPrecision, LabStatsOptions, LabTransferOptions, SpecularOptions } from './transfer';
export { rgbHistogram, RgbHistogram } from './histogram';
export type { HistogramOptions } from './histogram';
