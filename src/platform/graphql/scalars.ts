import { GraphQLScalarType, Kind, print, type ValueNode } from 'graphql';
import { DateTimeResolver } from 'graphql-scalars';
import { BadUserInputError } from '../errors.js';
import { bytesToFloat32, isFiniteArray } from '../float32.js';

export const DateTime = DateTimeResolver;

/**
 * Why a string cannot be stored, or null when it can. PostgreSQL refuses U+0000 in text and jsonb,
 * and Prisma refuses a UTF-16 surrogate without its pair (it cannot be written as UTF-8); either
 * would otherwise surface from the database as an internal error after work had begun.
 */
export function unstorableString(value: string): string | null {
  const nul = value.indexOf('\0');
  if (nul !== -1) return `a NUL character (U+0000) at position ${nul}`;
  if ((value as string & { isWellFormed(): boolean }).isWellFormed()) return null;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else return `an unpaired UTF-16 surrogate (U+${unit.toString(16).toUpperCase()}) at position ${i}`;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return `an unpaired UTF-16 surrogate (U+${unit.toString(16).toUpperCase()}) at position ${i}`;
    }
  }
  return null;
}

/**
 * How large a JSON argument may be. Depth bounds every recursive consumer downstream (Prisma's
 * serializer overflowed the stack on 500 nested arrays); the count of keys and elements bounds the
 * work per value, well above a real model.json topology (a few thousand); bytes are bounded by the
 * request body limit (TANGENT_MAX_BODY_BYTES).
 */
export const JSON_LIMITS = { maxDepth: 32, maxValues: 100_000 } as const;

/** A pending value of checkJsonValue's walk; its path is built only when an error names it. */
type JsonStep = { value: unknown; depth: number; parent: JsonStep | null; key: string | number | null };

function jsonPath(step: JsonStep, prefix: string): string {
  const parts: string[] = [];
  for (let s: JsonStep | null = step; s && s.key !== null; s = s.parent) parts.push(typeof s.key === 'number' ? `[${s.key}]` : `.${s.key}`);
  const inner = parts.reverse().join('');
  if (!prefix) return inner.startsWith('.') ? inner.slice(1) : inner;
  return prefix + inner;
}

/**
 * Refuses a JSON value that is nested deeper than JSON_LIMITS.maxDepth, holds more than
 * JSON_LIMITS.maxValues keys and elements, or holds a key or string that cannot be stored
 * (unstorableString). Iterative, so no value can overflow the stack here; the error names where,
 * as `prefix` followed by the path inside the value (`input.config.layers[3]`).
 */
export function checkJsonValue(value: unknown, prefix = ''): void {
  const where = (step: JsonStep) => {
    const path = jsonPath(step, prefix);
    return path ? `\`${path}\`` : 'A JSON value';
  };
  const fail = (step: JsonStep, message: string): never => {
    throw new BadUserInputError(`${where(step)} ${message}`, jsonPath(step, prefix) || undefined);
  };
  const stack: JsonStep[] = [{ value, depth: 0, parent: null, key: null }];
  let values = 0;
  while (stack.length) {
    const step = stack.pop()!;
    const v = step.value;
    if (typeof v === 'string') {
      const problem = unstorableString(v);
      if (problem) fail(step, `holds ${problem}, which cannot be stored`);
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    const depth = step.depth + 1;
    if (depth > JSON_LIMITS.maxDepth) fail(step, `is nested deeper than ${JSON_LIMITS.maxDepth} levels, the most a JSON argument may be`);
    if (Array.isArray(v)) {
      values += v.length;
      if (values > JSON_LIMITS.maxValues) fail(step, `takes the JSON argument past ${JSON_LIMITS.maxValues} keys and elements, the most one may hold`);
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], depth, parent: step, key: i });
      continue;
    }
    const keys = Object.keys(v);
    values += keys.length;
    if (values > JSON_LIMITS.maxValues) fail(step, `takes the JSON argument past ${JSON_LIMITS.maxValues} keys and elements, the most one may hold`);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const problem = unstorableString(key);
      if (problem) fail(step, `has a key with ${problem}, which cannot be stored`);
      stack.push({ value: (v as Record<string, unknown>)[key], depth, parent: step, key });
    }
  }
}

/**
 * A JSON literal written in the document, as a plain value. Recursion is bounded: deeper than
 * JSON_LIMITS.maxDepth is refused before going further (and the document's own nesting is bounded
 * before it is parsed, src/platform/http/input-guard.ts).
 */
function jsonLiteral(ast: ValueNode, variables: Record<string, unknown> | null | undefined, depth: number): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.ENUM:
      return ast.value;
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
    case Kind.LIST:
    case Kind.OBJECT: {
      if (depth >= JSON_LIMITS.maxDepth) throw new BadUserInputError(`A JSON value is nested deeper than ${JSON_LIMITS.maxDepth} levels, the most a JSON argument may be`);
      if (ast.kind === Kind.LIST) return ast.values.map((v) => jsonLiteral(v, variables, depth + 1));
      const out: Record<string, unknown> = Object.create(null);
      for (const field of ast.fields) out[field.name.value] = jsonLiteral(field.value, variables, depth + 1);
      return { ...out };
    }
    default:
      throw new BadUserInputError(`Not a JSON value: ${print(ast)}`);
  }
}

/** Any JSON value, within JSON_LIMITS and with strings that can be stored (checkJsonValue). */
export const JSON = new GraphQLScalarType<unknown, unknown>({
  name: 'JSON',
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue(value) {
    checkJsonValue(value);
    return value;
  },
  parseLiteral(ast, variables) {
    const value = jsonLiteral(ast, variables, 0);
    checkJsonValue(value);
    return value;
  },
});

/** A character that standard base64 does not use (padding aside). */
const NOT_BASE64 = /[^A-Za-z0-9+/]/;

/**
 * Decodes strict standard base64; Node's decoder silently skips bad characters, which we refuse.
 * Checked as length, padding and one character-class scan rather than one anchored pattern with a
 * repeated group: that pattern overflowed V8's regexp stack on a Mantis-8M checkpoint (43 MB).
 */
function decodeBase64(value: string, what: string): Buffer {
  const pad = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  if (value.length % 4 !== 0 || NOT_BASE64.test(value.slice(0, value.length - pad))) throw new BadUserInputError(`${what} is not valid base64`);
  return Buffer.from(value, 'base64');
}

function toFloatArray(value: unknown): Float32Array {
  if (typeof value === 'string') {
    const bytes = decodeBase64(value, 'A FloatArray');
    if (bytes.byteLength % 4 !== 0) {
      throw new BadUserInputError('A base64 FloatArray must hold a whole number of float32 values (4 bytes each)');
    }
    const floats = bytesToFloat32(bytes);
    if (!isFiniteArray(floats)) throw new BadUserInputError('A FloatArray may not hold NaN or Infinity');
    return floats;
  }
  if (Array.isArray(value)) {
    const floats = new Float32Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new BadUserInputError(`A FloatArray holds finite numbers only; element ${i} is ${String(v)}`);
      }
      floats[i] = v;
      // A finite float64 beyond float32's range would become Infinity.
      if (!Number.isFinite(floats[i]!)) throw new BadUserInputError(`Element ${i} (${v}) is outside the float32 range`);
    }
    return floats;
  }
  throw new BadUserInputError('A FloatArray is a list of numbers or a base64 string of little-endian float32');
}

function literalToJs(ast: ValueNode): unknown {
  switch (ast.kind) {
    case Kind.STRING:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.LIST:
      return ast.values.map(literalToJs);
    default:
      throw new BadUserInputError('A FloatArray literal is a list of numbers or a base64 string');
  }
}

export const FloatArray = new GraphQLScalarType<Float32Array, number[]>({
  name: 'FloatArray',
  description: 'Finite float32 values: a JSON array of numbers, or base64 of little-endian float32.',
  serialize(value) {
    if (value instanceof Float32Array || Array.isArray(value)) return Array.from(value as ArrayLike<number>);
    if (value instanceof Uint8Array) return Array.from(bytesToFloat32(value));
    throw new TypeError('FloatArray cannot represent this value');
  },
  parseValue: toFloatArray,
  parseLiteral: (ast) => toFloatArray(literalToJs(ast)),
});

export const Base64 = new GraphQLScalarType<Buffer, string>({
  name: 'Base64',
  description: 'Binary data as standard base64.',
  serialize(value) {
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
    throw new TypeError('Base64 cannot represent this value');
  },
  parseValue(value) {
    if (typeof value !== 'string') throw new BadUserInputError('Base64 input must be a string');
    return decodeBase64(value, 'The Base64 value');
  },
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw new BadUserInputError('Base64 input must be a string');
    return decodeBase64(ast.value, 'The Base64 value');
  },
});
