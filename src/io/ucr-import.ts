import { basename } from 'node:path';
import { applyLengthPolicy, LengthPolicyError, type LengthPolicy } from './length-policy.js';
import type { UcrDataset } from './ucr.js';

/**
 * Turning one or more UCR/UEA files of one problem (typically X_TRAIN.ts and X_TEST.ts) into one
 * dataset: shape from the files, class names from the first file imported, samples numbered from 0
 * over the files with train first, then validation, then test, then anything else (so the shell's
 * order of the file names does not matter), each file's series in file order.
 *
 * With a length policy every series is brought to the policy's length (./length-policy.ts), the
 * files' own lengths may differ, and each sample keeps the length it had in its file. Without
 * one the series are stored as given, so they must share one length.
 */
export interface UcrFile {
  dataset: UcrDataset;
  /** The file's name; `…_TRAIN.ts`, `…_TEST.ts`, `…_VALIDATION.ts` set the split. */
  fileName?: string | null;
  /** An explicit split, which wins over the file name's. */
  split?: string | null;
}

export interface UcrImportPlan {
  problemName: string;
  length: number;
  channels: number;
  classNames: string[];
  /** Column form of the samples, ready for a bulk write. */
  indices: Int32Array;
  labels: Int32Array;
  splits: string[];
  /** n × length × channels values, time-major per sample. */
  series: Float32Array;
  /** Each sample's length in its file, when a length policy was applied (null when stored as given). */
  originalLengths: Int32Array | null;
  /** The policy applied, if any. */
  lengthPolicy: LengthPolicy | null;
  /** Samples per split, in import order. */
  counts: { split: string; count: number }[];
}

export class UcrImportError extends Error {
  constructor(
    message: string,
    /** The position of the file to blame in the list given. */
    readonly file: number,
    /** The file's line to blame, when one line is at fault. */
    readonly line: number | null = null,
    /**
     * True when a length policy would resolve it: callers add how to give one on their surface
     * (CLI flags, a mutation's field).
     */
    readonly needsLengthPolicy = false,
  ) {
    super(line === null ? message : `line ${line}: ${message}`);
    this.name = 'UcrImportError';
  }
}

/** The split a UCR file name implies: `GunPoint_TRAIN.ts` → train; null when it implies none. */
export function splitOfFileName(fileName: string): string | null {
  const stem = basename(fileName).replace(/\.ts$/i, '');
  const match = /_(TRAIN|TEST|VALID|VALIDATION)$/i.exec(stem);
  if (!match) return null;
  const tag = match[1]!.toUpperCase();
  return tag === 'TRAIN' ? 'train' : tag === 'TEST' ? 'test' : 'validation';
}

const SPLIT_ORDER: Record<string, number> = { train: 0, validation: 1, test: 2 };

/**
 * Plans the import of files that must share one problem's channels and classes, and, without a
 * length policy, one length.
 */
export function planUcrImport(files: readonly UcrFile[], lengthPolicy: LengthPolicy | null = null): UcrImportPlan {
  if (files.length === 0) throw new UcrImportError('Give at least one file', 0);
  const first = files[0]!.dataset;
  const resolved = files.map((file, position) => {
    const d = file.dataset;
    if (d.series.length === 0) throw new UcrImportError('The file has no series', position);
    if (!lengthPolicy && d.length === 0) {
      const shortest = d.series.reduce((m, s) => Math.min(m, s.length), Number.POSITIVE_INFINITY);
      const longest = d.series.reduce((m, s) => Math.max(m, s.length), 0);
      throw new UcrImportError(
        `@equalLength false: the series have ${shortest} to ${longest} steps, and a dataset holds series of one length; choose a length and how to reach it`,
        position,
        d.equalLengthLine,
        true,
      );
    }
    if (d.channels !== first.channels) {
      throw new UcrImportError(`The file's series have ${d.channels} channels; the first file's have ${first.channels}`, position);
    }
    if (!lengthPolicy && d.length !== first.length) {
      throw new UcrImportError(
        `The file's series are ${d.length} × ${d.channels}; the first file's are ${first.length} × ${first.channels}; choose one length and how to reach it`,
        position,
        null,
        true,
      );
    }
    const split = file.split?.trim() || (file.fileName ? splitOfFileName(file.fileName) : null) || 'train';
    return { d, split, position, remap: [] as number[] };
  });
  resolved.sort((a, b) => (SPLIT_ORDER[a.split] ?? 3) - (SPLIT_ORDER[b.split] ?? 3) || a.position - b.position);
  // Class names in the order of the first file imported (the train file when there is one); the
  // same classes in another order elsewhere are mapped by name, other classes are refused.
  const classNames = resolved[0]!.d.classNames;
  for (const r of resolved) {
    const names = r.d.classNames;
    if (names.length !== classNames.length || !names.every((c) => classNames.includes(c))) {
      throw new UcrImportError(`The file's classes (${names.join(' ')}) differ from those of file ${resolved[0]!.position} (${classNames.join(' ')})`, r.position);
    }
    r.remap = names.map((c) => classNames.indexOf(c));
  }

  const length = lengthPolicy ? lengthPolicy.length : first.length;
  const channels = first.channels;
  const values = length * channels;
  const n = resolved.reduce((sum, r) => sum + r.d.series.length, 0);
  const plan: UcrImportPlan = {
    problemName: first.problemName,
    length,
    channels,
    classNames,
    indices: new Int32Array(n),
    labels: new Int32Array(n),
    splits: new Array<string>(n),
    series: new Float32Array(n * values),
    originalLengths: lengthPolicy ? new Int32Array(n) : null,
    lengthPolicy,
    counts: [],
  };
  let i = 0;
  for (const r of resolved) {
    for (const s of r.d.series) {
      plan.indices[i] = i;
      plan.labels[i] = r.remap[s.label]!;
      plan.splits[i] = r.split;
      if (lengthPolicy) {
        try {
          plan.series.set(applyLengthPolicy(s.values, s.length, channels, lengthPolicy), i * values);
        } catch (error) {
          if (error instanceof LengthPolicyError) throw new UcrImportError(error.message, r.position, s.line);
          throw error;
        }
        plan.originalLengths![i] = s.length;
      } else {
        plan.series.set(s.values, i * values);
      }
      i++;
    }
    const counted = plan.counts.find((c) => c.split === r.split);
    if (counted) counted.count += r.d.series.length;
    else plan.counts.push({ split: r.split, count: r.d.series.length });
  }
  return plan;
}
