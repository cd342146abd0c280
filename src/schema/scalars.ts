import { GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import { BadUserInputError } from '../errors.js';
import { bytesToFloat32, isFiniteArray } from '../float32.js';

export const DateTime = DateTimeResolver;
export const JSON = JSONResolver;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes strict standard base64; Node's decoder silently skips bad characters, which we refuse. */
function decodeBase64(value: string, what: string): Buffer {
  if (!BASE64.test(value)) throw new BadUserInputError(`${what} is not valid base64`);
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
