/** The safetensors reader: every dtype it converts, and every way a file can break the format. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readSafetensors, SafetensorsError } from '../../src/io/safetensors.js';
import { fixtureCases, writeSafetensors } from './safetensors-helpers.js';

const refuses = (bytes: Buffer, pattern: RegExp) => assert.throws(() => readSafetensors(bytes), (e: unknown) => e instanceof SafetensorsError && pattern.test(e.message));

describe('safetensors reader', () => {
  test('reads F32, F64, F16, BF16, I64 and I32 tensors, scalars, empty tensors and metadata', () => {
    const bytes = writeSafetensors(
      {
        a: { dtype: 'F32', shape: [2, 3], values: [1, -2.5, 3e-8, 4, 5, 6] },
        b: { dtype: 'F64', shape: [2], values: [0.1, -1e30] },
        c: { dtype: 'F16', shape: [4], values: [1, -0.5, 65504, 2 ** -24] },
        d: { dtype: 'BF16', shape: [3], values: [1, -3.140625, 1e20] },
        steps: { dtype: 'I64', shape: [], values: [123456789012] },
        e: { dtype: 'I32', shape: [2], values: [-7, 7] },
        empty: { dtype: 'F32', shape: [0, 4], values: [] },
      },
      { metadata: { format: 'pt' } },
    );
    const f = readSafetensors(bytes);
    assert.deepEqual(f.metadata, { format: 'pt' });
    assert.deepEqual([...f.tensors.keys()], ['a', 'b', 'c', 'd', 'steps', 'e', 'empty']);
    assert.deepEqual(f.tensors.get('a')?.shape, [2, 3]);
    assert.deepEqual(Array.from(f.tensors.get('a')!.values), Array.from(Float32Array.from([1, -2.5, 3e-8, 4, 5, 6])));
    assert.ok(f.tensors.get('a')!.values instanceof Float32Array);
    assert.deepEqual(Array.from(f.tensors.get('b')!.values), Array.from(Float32Array.from([0.1, -1e30])));
    assert.deepEqual(Array.from(f.tensors.get('c')!.values), [1, -0.5, 65504, 2 ** -24]);
    // bfloat16 keeps the top 16 bits of a float32.
    const bf = Array.from(f.tensors.get('d')!.values);
    assert.equal(bf[0], 1);
    assert.equal(bf[1], -3.140625);
    assert.ok(Math.abs((bf[2] as number) / 1e20 - 1) < 2 ** -8);
    assert.deepEqual(Array.from(f.tensors.get('steps')!.values), [123456789012]);
    assert.ok(f.tensors.get('steps')!.values instanceof Float64Array);
    assert.deepEqual(f.tensors.get('steps')!.shape, []);
    assert.deepEqual(Array.from(f.tensors.get('e')!.values), [-7, 7]);
    assert.equal(f.tensors.get('empty')!.values.length, 0);
  });

  test('reads the files PyTorch wrote (bench/torch_models.py), header padded with spaces', () => {
    for (const c of fixtureCases()) {
      assert.ok(c.file.tensors.size > 3, c.name);
      assert.equal(c.file.metadata['architecture'], c.architecture);
      const header = Number(c.bytes.readBigUInt64LE(0));
      assert.equal(header % 8, 0, 'the reference writer pads the header to 8 bytes');
    }
  });

  test('refuses files that break the format, naming the problem', () => {
    const ok = { a: { dtype: 'F32' as const, shape: [2], values: [1, 2] } };
    refuses(Buffer.alloc(5), /8 bytes of header length/);
    const huge = writeSafetensors(ok);
    huge.writeBigUInt64LE(200_000_000n, 0);
    refuses(huge, /exceeds the 100000000-byte limit/);
    const past = writeSafetensors(ok);
    past.writeBigUInt64LE(BigInt(past.byteLength), 0);
    refuses(past, /runs past the end of the file/);
    const notBrace = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('[1] ')]);
    refuses(notBrace, /must begin with "\{"/);
    const badJson = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a"')]);
    refuses(badJson, /not valid JSON/);
    const badUtf8 = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0x7b, 0xff, 0x7d, 0x20])]);
    refuses(badUtf8, /not valid UTF-8/);
    // JSON.parse keeps the last of two equal keys; the format forbids them.
    const dupText = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    const dup = Buffer.concat([Buffer.alloc(8), Buffer.from(dupText), Buffer.alloc(4)]);
    dup.writeBigUInt64LE(BigInt(dupText.length), 0);
    refuses(dup, /names 'a' twice/);
    refuses(writeSafetensors(ok, { header: { b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } } }), /overlaps/);
    refuses(writeSafetensors(ok, { header: { b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }, tail: Buffer.alloc(8) }), /leaves a hole/);
    refuses(writeSafetensors(ok, { tail: Buffer.alloc(4) }), /4 bytes that no tensor covers/);
    refuses(writeSafetensors(ok, { header: { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } } }), /needs 12 bytes, data_offsets give 8/);
    refuses(writeSafetensors(ok, { header: { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } } }), /'b' runs past the end/);
    refuses(writeSafetensors(ok, { header: { a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } } }), /end 0 is before begin 8/);
    refuses(writeSafetensors({ u: { dtype: 'U8', shape: [4], values: [1, 2, 3, 4] } }), /dtype U8 is not supported/);
    refuses(writeSafetensors(ok, { header: { a: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } } }), /unknown dtype 'Q4'/);
    refuses(writeSafetensors(ok, { header: { a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } } }), /shape must be a list of non-negative integers/);
    refuses(writeSafetensors(ok, { header: { a: { dtype: 'F32', shape: [2], data_offsets: [0] } } }), /data_offsets must be \[begin, end\]/);
    refuses(writeSafetensors(ok, { metadata: { step: 3 } }), /__metadata__\.step must be a string/);
    refuses(writeSafetensors(ok, { header: { a: 5 } }), /expected \{dtype, shape, data_offsets\}/);
  });
});
