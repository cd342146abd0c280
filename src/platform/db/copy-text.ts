/**
 * Encodes rows for `COPY … FROM STDIN` in PostgreSQL's text format. Written by hand because the
 * format is small and fixed (tab-separated, `\N` for null, backslash escapes) while the libraries
 * for it stream objects we would have to build first; this writes lines straight from columns.
 */
export type CopyValue = string | number | boolean | null | undefined | Uint8Array | ArrayLike<number>;

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function encodeText(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!);
}

/** A real[] literal; float32 values print exactly with JavaScript's shortest round-trip form. */
function encodeFloatArray(values: ArrayLike<number>): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) out += (i ? ',' : '') + String(values[i]);
  return `${out}}`;
}

export function encodeCopyValue(value: CopyValue): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'string') return encodeText(value);
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 't' : 'f';
  // bytea in hex form; the backslash itself is escaped for the COPY text format.
  if (value instanceof Uint8Array) return `\\\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
  return encodeFloatArray(value);
}

export function encodeCopyLine(values: readonly CopyValue[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) line += (i ? '\t' : '') + encodeCopyValue(values[i]);
  return `${line}\n`;
}
