import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * A data set in the UCR/UEA `.ts` text format (as sktime and aeon write it): `#` comments, `@`
 * headers, then one series per line, channels separated by `:`, values by `,`, the class label
 * last. Written by hand: no maintained JavaScript reader exists, and the format is a page long.
 */
export interface UcrDataset {
  problemName: string;
  length: number;
  channels: number;
  /** Class labels as the header lists them; a series' `label` indexes this list. */
  classNames: string[];
  /** Time-major series (length × channels values each) with their class indices. */
  series: { label: number; values: Float32Array }[];
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
  const headers = new Map<string, string>();
  let inData = false;
  let classNames: string[] | null = null;
  let length = 0;
  let channels = 0;
  const series: UcrDataset['series'] = [];
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
        if (headers.get('missing') === 'true') throw new UcrFormatError('series with missing values are not supported', n);
        if (headers.get('equallength') === 'false') throw new UcrFormatError('series of unequal length are not supported', n);
        if (headers.get('timestamps') === 'true') throw new UcrFormatError('timestamped series are not supported', n);
        const classLabel = headers.get('classlabel')?.split(/\s+/) ?? [];
        if (classLabel[0] !== 'true' || classLabel.length < 2) throw new UcrFormatError('@classLabel true <labels…> is required', n);
        classNames = classLabel.slice(1);
        continue;
      }
      headers.set(name, rest.join(' '));
      continue;
    }
    const dims = line.split(':');
    const labelText = dims.pop()!.trim();
    const label = classNames!.indexOf(labelText);
    if (label < 0) throw new UcrFormatError(`class ${JSON.stringify(labelText)} is not in @classLabel`, n);
    const columns = dims.map((d) => d.split(','));
    if (!channels) {
      channels = columns.length;
      length = columns[0]!.length;
    }
    if (columns.length !== channels) throw new UcrFormatError(`expected ${channels} channels, found ${columns.length}`, n);
    const values = new Float32Array(length * channels);
    for (let c = 0; c < channels; c++) {
      const column = columns[c]!;
      if (column.length !== length) throw new UcrFormatError(`channel ${c} has ${column.length} values, expected ${length}`, n);
      for (let t = 0; t < length; t++) {
        const v = Number(column[t]);
        if (!Number.isFinite(v) || column[t]!.trim() === '') throw new UcrFormatError(`value ${t} of channel ${c} is not a number`, n);
        values[t * channels + c] = v;
      }
    }
    series.push({ label, values });
  }
  if (!inData) throw new UcrFormatError('no @data section', n);
  const declared = Number(headers.get('serieslength'));
  if (Number.isFinite(declared) && declared > 0 && length && declared !== length) {
    throw new UcrFormatError(`@seriesLength says ${declared} but the series have ${length} values`, n);
  }
  return { problemName: headers.get('problemname') ?? '', length, channels, classNames: classNames!, series };
}
