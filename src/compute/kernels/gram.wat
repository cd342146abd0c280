;; Per-sample Gram matrices for the self-kernel: out[s, a, b] = Σ_p x[s, a, p] · x[s, b, p],
;; x [n, v, p] and out [n, v, v] float32, both in the memory of the tfjs wasm backend (imported),
;; addressed by byte offsets. Only a ≤ b is computed; the lower triangle is mirrored.
;;
;; XNNPACK packs the right operand of every product anew, which for a [v, p] × [p, v] product
;; with p in the tens of thousands costs more than the arithmetic; this kernel streams each row
;; once per block of four partner rows (5 loads per 16 multiply-adds) with 128-bit SIMD.
;; Accuracy: f32 partial sums over blocks of 256 values per lane, accumulated in f64.
;;
;; Build: wat2wasm gram.wat -o gram.wasm (wabt 1.0.32, SIMD on by default), then
;;   node -e "process.stdout.write(require('fs').readFileSync('gram.wasm').toString('base64'))"
;; into gram-wasm.ts.
(module
  (import "env" "memory" (memory 0))

  (func $hsum (param $acc v128) (result f64)
    (f64.add
      (f64.add (f64.promote_f32 (f32x4.extract_lane 0 (local.get $acc)))
               (f64.promote_f32 (f32x4.extract_lane 1 (local.get $acc))))
      (f64.add (f64.promote_f32 (f32x4.extract_lane 2 (local.get $acc)))
               (f64.promote_f32 (f32x4.extract_lane 3 (local.get $acc))))))

  ;; Dot products of row $ra with rows $rb0..$rb3 (length $p), stored as f32 at $o..$o+12.
  (func $dot4 (param $ra i32) (param $rb0 i32) (param $rb1 i32) (param $rb2 i32) (param $rb3 i32)
              (param $p i32) (param $o i32)
    (local $i i32) (local $end i32) (local $p4 i32) (local $off i32)
    (local $va v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $s3 f64) (local $xa f32)
    (local.set $p4 (i32.and (local.get $p) (i32.const -4)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $i) (local.get $p4)))
        (local.set $end (i32.add (local.get $i) (i32.const 256)))
        (if (i32.gt_u (local.get $end) (local.get $p4)) (then (local.set $end (local.get $p4))))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0))
        (loop $inner
          (local.set $off (i32.shl (local.get $i) (i32.const 2)))
          (local.set $va (v128.load (i32.add (local.get $ra) (local.get $off))))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $rb0) (local.get $off))))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $rb1) (local.get $off))))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $rb2) (local.get $off))))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $rb3) (local.get $off))))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br_if $inner (i32.lt_u (local.get $i) (local.get $end))))
        (local.set $s0 (f64.add (local.get $s0) (call $hsum (local.get $a0))))
        (local.set $s1 (f64.add (local.get $s1) (call $hsum (local.get $a1))))
        (local.set $s2 (f64.add (local.get $s2) (call $hsum (local.get $a2))))
        (local.set $s3 (f64.add (local.get $s3) (call $hsum (local.get $a3))))
        (br $blocks)))
    ;; the last p mod 4 values
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $p)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (local.set $xa (f32.load (i32.add (local.get $ra) (local.get $off))))
        (local.set $s0 (f64.add (local.get $s0) (f64.promote_f32 (f32.mul (local.get $xa) (f32.load (i32.add (local.get $rb0) (local.get $off)))))))
        (local.set $s1 (f64.add (local.get $s1) (f64.promote_f32 (f32.mul (local.get $xa) (f32.load (i32.add (local.get $rb1) (local.get $off)))))))
        (local.set $s2 (f64.add (local.get $s2) (f64.promote_f32 (f32.mul (local.get $xa) (f32.load (i32.add (local.get $rb2) (local.get $off)))))))
        (local.set $s3 (f64.add (local.get $s3) (f64.promote_f32 (f32.mul (local.get $xa) (f32.load (i32.add (local.get $rb3) (local.get $off)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (f32.store (local.get $o) (f32.demote_f64 (local.get $s0)))
    (f32.store offset=4 (local.get $o) (f32.demote_f64 (local.get $s1)))
    (f32.store offset=8 (local.get $o) (f32.demote_f64 (local.get $s2)))
    (f32.store offset=12 (local.get $o) (f32.demote_f64 (local.get $s3))))

  ;; Dot product of rows $ra and $rb (length $p), stored as f32 at $o.
  (func $dot1 (param $ra i32) (param $rb i32) (param $p i32) (param $o i32)
    (local $i i32) (local $end i32) (local $p4 i32) (local $off i32) (local $a0 v128) (local $s0 f64)
    (local.set $p4 (i32.and (local.get $p) (i32.const -4)))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $i) (local.get $p4)))
        (local.set $end (i32.add (local.get $i) (i32.const 256)))
        (if (i32.gt_u (local.get $end) (local.get $p4)) (then (local.set $end (local.get $p4))))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (loop $inner
          (local.set $off (i32.shl (local.get $i) (i32.const 2)))
          (local.set $a0 (f32x4.add (local.get $a0)
            (f32x4.mul (v128.load (i32.add (local.get $ra) (local.get $off))) (v128.load (i32.add (local.get $rb) (local.get $off))))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br_if $inner (i32.lt_u (local.get $i) (local.get $end))))
        (local.set $s0 (f64.add (local.get $s0) (call $hsum (local.get $a0))))
        (br $blocks)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $p)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (local.set $s0 (f64.add (local.get $s0)
          (f64.promote_f32 (f32.mul (f32.load (i32.add (local.get $ra) (local.get $off))) (f32.load (i32.add (local.get $rb) (local.get $off)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (f32.store (local.get $o) (f32.demote_f64 (local.get $s0))))

  (func (export "gram") (param $x i32) (param $n i32) (param $v i32) (param $p i32) (param $out i32)
    (local $s i32) (local $a i32) (local $b i32) (local $row i32) (local $base i32) (local $obase i32)
    (local.set $row (i32.shl (local.get $p) (i32.const 2)))
    (block $samples_done
      (loop $samples
        (br_if $samples_done (i32.ge_u (local.get $s) (local.get $n)))
        (local.set $base (i32.add (local.get $x) (i32.mul (local.get $s) (i32.mul (local.get $v) (local.get $row)))))
        (local.set $obase (i32.add (local.get $out) (i32.shl (i32.mul (local.get $s) (i32.mul (local.get $v) (local.get $v))) (i32.const 2))))
        (local.set $a (i32.const 0))
        (block $rows_done
          (loop $rows
            (br_if $rows_done (i32.ge_u (local.get $a) (local.get $v)))
            (local.set $b (local.get $a))
            (block $quads_done
              (loop $quads
                (br_if $quads_done (i32.gt_u (i32.add (local.get $b) (i32.const 4)) (local.get $v)))
                (call $dot4
                  (i32.add (local.get $base) (i32.mul (local.get $a) (local.get $row)))
                  (i32.add (local.get $base) (i32.mul (local.get $b) (local.get $row)))
                  (i32.add (local.get $base) (i32.mul (i32.add (local.get $b) (i32.const 1)) (local.get $row)))
                  (i32.add (local.get $base) (i32.mul (i32.add (local.get $b) (i32.const 2)) (local.get $row)))
                  (i32.add (local.get $base) (i32.mul (i32.add (local.get $b) (i32.const 3)) (local.get $row)))
                  (local.get $p)
                  (i32.add (local.get $obase) (i32.shl (i32.add (i32.mul (local.get $a) (local.get $v)) (local.get $b)) (i32.const 2))))
                (local.set $b (i32.add (local.get $b) (i32.const 4)))
                (br $quads)))
            (block $ones_done
              (loop $ones
                (br_if $ones_done (i32.ge_u (local.get $b) (local.get $v)))
                (call $dot1
                  (i32.add (local.get $base) (i32.mul (local.get $a) (local.get $row)))
                  (i32.add (local.get $base) (i32.mul (local.get $b) (local.get $row)))
                  (local.get $p)
                  (i32.add (local.get $obase) (i32.shl (i32.add (i32.mul (local.get $a) (local.get $v)) (local.get $b)) (i32.const 2))))
                (local.set $b (i32.add (local.get $b) (i32.const 1)))
                (br $ones)))
            ;; mirror row a's upper part into column a
            (local.set $b (i32.add (local.get $a) (i32.const 1)))
            (block $mirror_done
              (loop $mirror
                (br_if $mirror_done (i32.ge_u (local.get $b) (local.get $v)))
                (f32.store
                  (i32.add (local.get $obase) (i32.shl (i32.add (i32.mul (local.get $b) (local.get $v)) (local.get $a)) (i32.const 2)))
                  (f32.load (i32.add (local.get $obase) (i32.shl (i32.add (i32.mul (local.get $a) (local.get $v)) (local.get $b)) (i32.const 2)))))
                (local.set $b (i32.add (local.get $b) (i32.const 1)))
                (br $mirror)))
            (local.set $a (i32.add (local.get $a) (i32.const 1)))
            (br $rows)))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $samples))))
)
