import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * A data set in the UCR/UEA `.ts` text format (as sktime and aeon write it): `#` comments, `@`
 * headers, then one series per line, channels separated by `:`, values by `,`, the class label
 * last. Written by hand: no maintained JavaScript reader exists, and the format is a page long.
 *
 * Series of one file share one length unless the header says `@equalLength false` (UEA problems
 * such as JapaneseVowels); then each line has its own length, shared by its channels. Bringing
 * such series to one length is the importer's job (./length-policy.ts), not the reader's.
 */
export interface UcrDataset {
  problemName: string;
  /** The length all series share; 0 when they vary (only with `@equalLength false`). */
  length: number;
  channels: number;
  /** Class labels as the header lists them; a series' `label` indexes this list. */
  classNames: string[];
  /** The line of the `@equalLength false` header, when the file has one (null otherwise). */
  equalLengthLine: number | null;
  /**
   * Time-major series (length × channels values each) with their class indices, their own length
   * (the same for every series unless `@equalLength false`) and the line each was read from.
   */
  series: UcrSeries[];
}

export interface UcrSeries {
  label: number;
  /** Time steps of this series; `values` holds length × channels numbers. */
  length: number;
  values: Float32Array;
  /** The 1-based line of the file that holds it, for errors about it later. */
  line: number;
}

export class UcrFormatError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'UcrFormatError';
  }
}

export async function readUcrFile(path: string): Promise<UcrDataset> {
  return parseUcr(createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity }));
}

export async function parseUcr(lines: AsyncIterable<string> | Iterable<string>): Promise<UcrDataset> {
  const headers = new Map<string, { value: string; line: number }>();
  let inData = false;
  let classNames: string[] | null = null;
  let equalLength = true;
  let length = 0;
  let channels = 0;
  const series: UcrSeries[] = [];
  let n = 0;
  for await (const raw of lines) {
    n++;
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (!inData) {
      if (!line.startsWith('@')) throw new UcrFormatError('expected a @header before @data', n);
      const [key, ...rest] = line.slice(1).split(/\s+/);
      const name = key!.toLowerCase();
      if (name === 'data') {
        inData = true;
        if (headers.get('missing')?.value === 'true') throw new UcrFormatError('series with missing values are not supported', n);
        if (headers.get('timestamps')?.value === 'true') throw new UcrFormatError('timestamped series are not supported', n);
        equalLength = headers.get('equallength')?.value !== 'false';
        const classLabel = headers.get('classlabel')?.value.split(/\s+/) ?? [];
        if (classLabel[0] !== 'true' || classLabel.length < 2) throw new UcrFormatError('@classLabel true <labels…> is required', n);
        classNames = classLabel.slice(1);
        continue;
      }
      headers.set(name, { value: rest.join(' '), line: n });
      continue;
    }
    const dims = line.split(':');
    const labelText = dims.pop()!.trim();
    const label = classNames!.indexOf(labelText);
    if (label < 0) throw new UcrFormatError(`class ${JSON.stringify(labelText)} is not in @classLabel`, n);
    const columns = dims.map((d) => d.split(','));
    if (!channels) channels = columns.length;
    if (columns.length !== channels) throw new UcrFormatError(`expected ${channels} channels, found ${columns.length}`, n);
    // The first channel sets this series' length; in an equal-length file the first series sets everyone's.
    const own = series.length > 0 && equalLength ? length : columns[0]!.length;
    if (series.length === 0) length = own;
    const values = new Float32Array(own * channels);
    for (let c = 0; c < channels; c++) {
      const column = columns[c]!;
      if (column.length !== own) {
        throw new UcrFormatError(
          equalLength
            ? `channel ${c} has ${column.length} values, expected ${own}${c === 0 ? ' (the header does not say @equalLength false)' : ''}`
            : `channel ${c} has ${column.length} values, channel 0 has ${own}; the channels of one series share its length`,
          n,
        );
      }
      for (let t = 0; t < own; t++) {
        const v = Number(column[t]);
        if (!Number.isFinite(v) || column[t]!.trim() === '') throw new UcrFormatError(`value ${t} of channel ${c} is not a number`, n);
        values[t * channels + c] = v;
      }
    }
    if (own !== length) length = 0;
    series.push({ label, length: own, values, line: n });
  }
  if (!inData) throw new UcrFormatError('no @data section', n);
  const declared = Number(headers.get('serieslength')?.value);
  if (equalLength && Number.isFinite(declared) && declared > 0 && length && declared !== length) {
    throw new UcrFormatError(`@seriesLength says ${declared} but the series have ${length} values`, n);
  }
  return {
    problemName: headers.get('problemname')?.value ?? '',
    length,
    channels,
    classNames: classNames!,
    equalLengthLine: equalLength ? null : headers.get('equallength')!.line,
    series,
  };
}
