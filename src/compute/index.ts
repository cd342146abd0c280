/**
 * Tangent's compute engine: exact A, H, G and empirical-NTK terms of a tfjs layers model at a
 * checkpoint, for batches of samples. Everything here takes and returns plain typed arrays; no
 * tensor escapes a call, and the number of live tensors is the same before and after each one.
 *
 * Shapes: samples x are Float32Array [n, length, channels] (sample-major); V = classes;
 * P = parameters in the chosen subset.
 */
export { BACKEND_PREFERENCES, backendInfo, initBackend } from './backend.js';
export type { BackendInfo, BackendLog, BackendPreference, BackendReport, SkippedBackend } from './backend.js';
export { ARCHITECTURES, CNN1D_DEFAULTS, TRANSFORMER_DEFAULTS, buildArchitecture, cnn1d, transformer } from './architectures.js';
export type { ArchitectureName, ArchitectureShape, Cnn1dConfig, TransformerConfig } from './architectures.js';
export { architectureConfigProblems } from './architectures.js';
export type { ConfigProblem } from './architecture-config.js';
export { loadModel, loadWeights, modelJsonOf, serializeModel, weightSpecsOf } from './checkpoint.js';
export type { ModelSource, StoredModel, StoredWeights } from './checkpoint.js';
export { prepareModel } from './model.js';
export type { EngineModel } from './model.js';
export type { Subset, SubsetInfo } from './plan.js';
export type { RunInfo, RunOptions } from './engine.js';
export { outputTerms } from './terms.js';
export type { OutputTerms } from './terms.js';
export { computeTerms, logitsOf, outputs } from './predict.js';
export type { SampleTerms } from './predict.js';
export { jacobian, projectedJacobian, selfKernel } from './kernel.js';
export type { ParamInfo, ProjectionReport, SelfKernelResult } from './kernel.js';
export { crossKernel, kCross } from './cross.js';
export type { CrossKernelOptions, CrossKernelResult } from './cross.js';
export type { ProjectionOptions } from './projection.js';
export { firstOrder, firstOrderFromKernel } from './first-order.js';
export type { FirstOrderInput, FirstOrderResult } from './first-order.js';
export { ClassToken, SelfAttention, SinusoidalPosition, TakeToken } from './layers.js';
export { MANTIS_DEFAULTS, MANTIS_SUBSETS, mantis, mantisConfig, mantisKernelSize, mantisProblems } from './mantis.js';
export type { MantisConfig } from './mantis.js';
export { ChannelSeries, PatchMean, PatchStats, ScalarEncoder, SeriesConv, SeriesDiff, SeriesNorm } from './series-layers.js';
export { namedSubsets, subsetsOf } from './plan.js';
export { ComputePool, createPool } from './pool.js';
export type { PoolModel, PoolOptions } from './pool.js';
export { logitsFromTrunk, trunkFeatures, trunkSplit } from './trunk.js';
export type { TrunkFeatures, TrunkSplit } from './trunk.js';
