;; Multi-head self-attention forward on packed [q | k | v], in the memory of the tfjs wasm backend
;; (imported), addressed by byte offsets:
;;   x   [n, T, 3d] float32, d = h·dh; head c reads q at column c·dh, k at d + c·dh, v at 2d + c·dh
;;   out [n, T, d]  float32, softmax(q kᵀ · scale) v, head c written at column c·dh
;;   p   [n, h, T, T] float32, the softmax probabilities (the backward reuses them)
;;
;; tfjs on wasm splits x (SplitV copies the whole input per part), transposes the heads out and
;; runs two batched products on its generic batched kernel (≈0.2 GFLOP/s at T = 33, dh = 128);
;; this reads the heads in place with 128-bit SIMD, two query rows at a time (sharing the loads
;; of k and v; the same sums in the same order as one row at a time). Accuracy: f32 products
;; summed in f32 lanes (as XNNPACK does), the exponentials and their sum in f64.
;;
;; Build: wat2wasm attention.wat -o attention.wasm (wabt 1.0.39, SIMD on by default), then
;;   node -e "process.stdout.write(require('fs').readFileSync('attention.wasm').toString('base64'))"
;; into attention-wasm.ts.
(module
  (import "env" "memory" (memory 0))

  ;; e^x for x ≤ 0 in f64 (the softmax's shifted scores): x = k·ln2 + r, |r| ≤ ln2/2 (ln2 split in
  ;; two so that k·ln2_hi is exact), e^r by its Taylor series to r^12/12! (error < 1e-14), times
  ;; 2^k through the exponent bits; 0 below −708 (float32 has nothing that small). In wasm, not an
  ;; imported Math.exp: a call into JavaScript per probability cost more than the products.
  (func $exp (param $x f64) (result f64)
    (local $k f64) (local $r f64) (local $p f64)
    (if (f64.lt (local.get $x) (f64.const -708)) (then (return (f64.const 0))))
    (local.set $k (f64.nearest (f64.mul (local.get $x) (f64.const 1.4426950408889634))))
    (local.set $r (f64.sub (f64.sub (local.get $x) (f64.mul (local.get $k) (f64.const 0.6931471803691238)))
                           (f64.mul (local.get $k) (f64.const 1.9082149292705877e-10))))
    (local.set $p (f64.const 2.08767569878681e-9))  ;; 1/12!
    (local.set $p (f64.add (f64.const 2.505210838544172e-8) (f64.mul (local.get $p) (local.get $r))))  ;; 1/11!
    (local.set $p (f64.add (f64.const 2.755731922398589e-7) (f64.mul (local.get $p) (local.get $r))))  ;; 1/10!
    (local.set $p (f64.add (f64.const 2.7557319223985893e-6) (f64.mul (local.get $p) (local.get $r))))  ;; 1/9!
    (local.set $p (f64.add (f64.const 2.48015873015873e-5) (f64.mul (local.get $p) (local.get $r))))  ;; 1/8!
    (local.set $p (f64.add (f64.const 1.984126984126984e-4) (f64.mul (local.get $p) (local.get $r))))  ;; 1/7!
    (local.set $p (f64.add (f64.const 1.388888888888889e-3) (f64.mul (local.get $p) (local.get $r))))  ;; 1/6!
    (local.set $p (f64.add (f64.const 8.333333333333333e-3) (f64.mul (local.get $p) (local.get $r))))  ;; 1/5!
    (local.set $p (f64.add (f64.const 4.1666666666666664e-2) (f64.mul (local.get $p) (local.get $r))))  ;; 1/4!
    (local.set $p (f64.add (f64.const 0.16666666666666666) (f64.mul (local.get $p) (local.get $r))))  ;; 1/3!
    (local.set $p (f64.add (f64.const 0.5) (f64.mul (local.get $p) (local.get $r))))
    (local.set $p (f64.add (f64.const 1) (f64.mul (local.get $p) (local.get $r))))
    (local.set $p (f64.add (f64.const 1) (f64.mul (local.get $p) (local.get $r))))
    (f64.mul (local.get $p)
      (f64.reinterpret_i64 (i64.shl (i64.add (i64.trunc_f64_s (local.get $k)) (i64.const 1023)) (i64.const 52)))))

;; $exp on two lanes at once (f64x2), the same operations in the same order per lane: the
  ;; softmax's exponentials are independent, and one at a time they waited on each other's latency.
  (func $exp2 (param $x v128) (result v128)
    (local $k v128) (local $r v128) (local $p v128) (local $under v128)
    (local.set $under (f64x2.lt (local.get $x) (v128.const f64x2 -708 -708)))
    (local.set $k (f64x2.nearest (f64x2.mul (local.get $x) (v128.const f64x2 1.4426950408889634 1.4426950408889634))))
    (local.set $r (f64x2.sub (f64x2.sub (local.get $x) (f64x2.mul (local.get $k) (v128.const f64x2 0.6931471803691238 0.6931471803691238)))
                             (f64x2.mul (local.get $k) (v128.const f64x2 1.9082149292705877e-10 1.9082149292705877e-10))))
    (local.set $p (v128.const f64x2 2.08767569878681e-9 2.08767569878681e-9))
    (local.set $p (f64x2.add (v128.const f64x2 2.505210838544172e-8 2.505210838544172e-8) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 2.755731922398589e-7 2.755731922398589e-7) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 2.7557319223985893e-6 2.7557319223985893e-6) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 2.48015873015873e-5 2.48015873015873e-5) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 1.984126984126984e-4 1.984126984126984e-4) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 1.388888888888889e-3 1.388888888888889e-3) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 8.333333333333333e-3 8.333333333333333e-3) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 4.1666666666666664e-2 4.1666666666666664e-2) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 0.16666666666666666 0.16666666666666666) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 0.5 0.5) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 1 1) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.add (v128.const f64x2 1 1) (f64x2.mul (local.get $p) (local.get $r))))
    (local.set $p (f64x2.mul (local.get $p)
      (i64x2.shl (i64x2.add (i64x2.extend_low_i32x4_s (i32x4.trunc_sat_f64x2_s_zero (local.get $k))) (v128.const i64x2 1023 1023)) (i32.const 52))))
    ;; below −708 the scale's exponent is out of range: 0, as $exp returns
    (v128.andnot (local.get $p) (local.get $under)))

  (func $hsum (param $a v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
      (f32.add (f32x4.extract_lane 2 (local.get $a)) (f32x4.extract_lane 3 (local.get $a)))))

  ;; Dot products of row $ra with rows $rb0..$rb3 (length $len), times $scale, stored at $o..$o+12.
  (func $dot4 (param $ra i32) (param $rb0 i32) (param $rb1 i32) (param $rb2 i32) (param $rb3 i32)
              (param $len i32) (param $scale f32) (param $o i32)
    (local $i i32) (local $len4 i32) (local $off i32) (local $va v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $s0 f32) (local $s1 f32) (local $s2 f32) (local $s3 f32) (local $xa f32)
    (local.set $len4 (i32.and (local.get $len) (i32.const -4)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $i) (local.get $len4)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (local.set $va (v128.load (i32.add (local.get $ra) (local.get $off))))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $rb0) (local.get $off))))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $rb1) (local.get $off))))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $rb2) (local.get $off))))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $rb3) (local.get $off))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vec)))
    (local.set $s0 (call $hsum (local.get $a0)))
    (local.set $s1 (call $hsum (local.get $a1)))
    (local.set $s2 (call $hsum (local.get $a2)))
    (local.set $s3 (call $hsum (local.get $a3)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (local.set $xa (f32.load (i32.add (local.get $ra) (local.get $off))))
        (local.set $s0 (f32.add (local.get $s0) (f32.mul (local.get $xa) (f32.load (i32.add (local.get $rb0) (local.get $off))))))
        (local.set $s1 (f32.add (local.get $s1) (f32.mul (local.get $xa) (f32.load (i32.add (local.get $rb1) (local.get $off))))))
        (local.set $s2 (f32.add (local.get $s2) (f32.mul (local.get $xa) (f32.load (i32.add (local.get $rb2) (local.get $off))))))
        (local.set $s3 (f32.add (local.get $s3) (f32.mul (local.get $xa) (f32.load (i32.add (local.get $rb3) (local.get $off))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (f32.store (local.get $o) (f32.mul (local.get $s0) (local.get $scale)))
    (f32.store offset=4 (local.get $o) (f32.mul (local.get $s1) (local.get $scale)))
    (f32.store offset=8 (local.get $o) (f32.mul (local.get $s2) (local.get $scale)))
    (f32.store offset=12 (local.get $o) (f32.mul (local.get $s3) (local.get $scale))))

  ;; Dot products of rows $qa and $qb with rows $k0..$k3 (length $len), times $scale, stored at
  ;; $oa..$oa+12 and $ob..$ob+12: the two query rows share every load of the key rows.
  (func $dot2x4 (param $qa i32) (param $qb i32) (param $k0 i32) (param $k1 i32) (param $k2 i32) (param $k3 i32)
                (param $len i32) (param $scale f32) (param $oa i32) (param $ob i32)
    (local $i i32) (local $len4 i32) (local $off i32) (local $va v128) (local $vb v128) (local $vk v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $xa f32) (local $xb f32) (local $y f32)
    (local $sa0 f32) (local $sa1 f32) (local $sa2 f32) (local $sa3 f32) (local $sb0 f32) (local $sb1 f32) (local $sb2 f32) (local $sb3 f32)
    (local.set $len4 (i32.and (local.get $len) (i32.const -4)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $i) (local.get $len4)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (local.set $va (v128.load (i32.add (local.get $qa) (local.get $off))))
        (local.set $vb (v128.load (i32.add (local.get $qb) (local.get $off))))
        (local.set $vk (v128.load (i32.add (local.get $k0) (local.get $off))))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $va) (local.get $vk))))
        (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $vb) (local.get $vk))))
        (local.set $vk (v128.load (i32.add (local.get $k1) (local.get $off))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $va) (local.get $vk))))
        (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $vb) (local.get $vk))))
        (local.set $vk (v128.load (i32.add (local.get $k2) (local.get $off))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $va) (local.get $vk))))
        (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $vb) (local.get $vk))))
        (local.set $vk (v128.load (i32.add (local.get $k3) (local.get $off))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $va) (local.get $vk))))
        (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $vb) (local.get $vk))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vec)))
    (local.set $sa0 (call $hsum (local.get $a0)))
    (local.set $sa1 (call $hsum (local.get $a1)))
    (local.set $sa2 (call $hsum (local.get $a2)))
    (local.set $sa3 (call $hsum (local.get $a3)))
    (local.set $sb0 (call $hsum (local.get $b0)))
    (local.set $sb1 (call $hsum (local.get $b1)))
    (local.set $sb2 (call $hsum (local.get $b2)))
    (local.set $sb3 (call $hsum (local.get $b3)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (local.set $xa (f32.load (i32.add (local.get $qa) (local.get $off))))
        (local.set $xb (f32.load (i32.add (local.get $qb) (local.get $off))))
        (local.set $y (f32.load (i32.add (local.get $k0) (local.get $off))))
        (local.set $sa0 (f32.add (local.get $sa0) (f32.mul (local.get $xa) (local.get $y))))
        (local.set $sb0 (f32.add (local.get $sb0) (f32.mul (local.get $xb) (local.get $y))))
        (local.set $y (f32.load (i32.add (local.get $k1) (local.get $off))))
        (local.set $sa1 (f32.add (local.get $sa1) (f32.mul (local.get $xa) (local.get $y))))
        (local.set $sb1 (f32.add (local.get $sb1) (f32.mul (local.get $xb) (local.get $y))))
        (local.set $y (f32.load (i32.add (local.get $k2) (local.get $off))))
        (local.set $sa2 (f32.add (local.get $sa2) (f32.mul (local.get $xa) (local.get $y))))
        (local.set $sb2 (f32.add (local.get $sb2) (f32.mul (local.get $xb) (local.get $y))))
        (local.set $y (f32.load (i32.add (local.get $k3) (local.get $off))))
        (local.set $sa3 (f32.add (local.get $sa3) (f32.mul (local.get $xa) (local.get $y))))
        (local.set $sb3 (f32.add (local.get $sb3) (f32.mul (local.get $xb) (local.get $y))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (f32.store (local.get $oa) (f32.mul (local.get $sa0) (local.get $scale)))
    (f32.store offset=4 (local.get $oa) (f32.mul (local.get $sa1) (local.get $scale)))
    (f32.store offset=8 (local.get $oa) (f32.mul (local.get $sa2) (local.get $scale)))
    (f32.store offset=12 (local.get $oa) (f32.mul (local.get $sa3) (local.get $scale)))
    (f32.store (local.get $ob) (f32.mul (local.get $sb0) (local.get $scale)))
    (f32.store offset=4 (local.get $ob) (f32.mul (local.get $sb1) (local.get $scale)))
    (f32.store offset=8 (local.get $ob) (f32.mul (local.get $sb2) (local.get $scale)))
    (f32.store offset=12 (local.get $ob) (f32.mul (local.get $sb3) (local.get $scale))))

  ;; Dot product of rows $ra and $rb (length $len), times $scale, stored at $o.
  (func $dot1 (param $ra i32) (param $rb i32) (param $len i32) (param $scale f32) (param $o i32)
    (local $i i32) (local $len4 i32) (local $off i32) (local $a0 v128) (local $s0 f32)
    (local.set $len4 (i32.and (local.get $len) (i32.const -4)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $i) (local.get $len4)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (local.set $a0 (f32x4.add (local.get $a0)
          (f32x4.mul (v128.load (i32.add (local.get $ra) (local.get $off))) (v128.load (i32.add (local.get $rb) (local.get $off))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vec)))
    (local.set $s0 (call $hsum (local.get $a0)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (local.set $s0 (f32.add (local.get $s0)
          (f32.mul (f32.load (i32.add (local.get $ra) (local.get $off))) (f32.load (i32.add (local.get $rb) (local.get $off))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (f32.store (local.get $o) (f32.mul (local.get $s0) (local.get $scale))))

  ;; Softmax of the row of $t values at $r, in place.
  (func $softmax (param $r i32) (param $t i32)
    (local $j i32) (local $m f32) (local $e f64) (local $sum f64) (local $at i32) (local $e2 v128)
    (local.set $m (f32.load (local.get $r)))
    (local.set $j (i32.const 1))
    (block $max_done
      (loop $max
        (br_if $max_done (i32.ge_u (local.get $j) (local.get $t)))
        (local.set $m (f32.max (local.get $m) (f32.load (i32.add (local.get $r) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $max)))
    (local.set $j (i32.const 0))
    (block $pairs_done
      (loop $pairs
        (br_if $pairs_done (i32.gt_u (i32.add (local.get $j) (i32.const 2)) (local.get $t)))
        (local.set $at (i32.add (local.get $r) (i32.shl (local.get $j) (i32.const 2))))
        ;; f32 score − max in f32 (as below), then both exponentials
        (local.set $e2 (call $exp2 (f64x2.promote_low_f32x4
          (f32x4.sub (v128.load64_zero (local.get $at)) (f32x4.splat (local.get $m))))))
        (local.set $sum (f64.add (local.get $sum) (f64x2.extract_lane 0 (local.get $e2))))
        (local.set $sum (f64.add (local.get $sum) (f64x2.extract_lane 1 (local.get $e2))))
        (v128.store64_lane 0 (local.get $at) (f32x4.demote_f64x2_zero (local.get $e2)))
        (local.set $j (i32.add (local.get $j) (i32.const 2)))
        (br $pairs)))
    (block $exp_done
      (loop $expl
        (br_if $exp_done (i32.ge_u (local.get $j) (local.get $t)))
        (local.set $at (i32.add (local.get $r) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $e (call $exp (f64.promote_f32 (f32.sub (f32.load (local.get $at)) (local.get $m)))))
        (local.set $sum (f64.add (local.get $sum) (local.get $e)))
        (f32.store (local.get $at) (f32.demote_f64 (local.get $e)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $expl)))
    (local.set $sum (f64.div (f64.const 1) (local.get $sum)))
    (local.set $j (i32.const 0))
    (block $div_done
      (loop $div
        (br_if $div_done (i32.ge_u (local.get $j) (local.get $t)))
        (local.set $at (i32.add (local.get $r) (i32.shl (local.get $j) (i32.const 2))))
        (f32.store (local.get $at) (f32.demote_f64 (f64.mul (f64.promote_f32 (f32.load (local.get $at))) (local.get $sum))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $div)))
  )

  ;; o[c] = Σ_j p[j] · v_j[c] for c < $len: rows v_j at $v0 + j·$vstride bytes, p at $pr, o at $o.
  (func $mix (param $pr i32) (param $v0 i32) (param $vstride i32) (param $t i32) (param $len i32) (param $o i32)
    (local $c i32) (local $j i32) (local $vr i32) (local $pj v128) (local $w f32) (local $s f32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $len16 i32) (local $len4 i32)
    (local.set $len16 (i32.and (local.get $len) (i32.const -16)))
    (local.set $len4 (i32.and (local.get $len) (i32.const -4)))
    ;; 16 columns at a time
    (block $b16_done
      (loop $b16
        (br_if $b16_done (i32.ge_u (local.get $c) (local.get $len16)))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $vr (i32.add (local.get $v0) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $j_done
          (loop $jl
            (br_if $j_done (i32.ge_u (local.get $j) (local.get $t)))
            (local.set $pj (f32x4.splat (f32.load (i32.add (local.get $pr) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $pj) (v128.load (local.get $vr)))))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $pj) (v128.load offset=16 (local.get $vr)))))
            (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $pj) (v128.load offset=32 (local.get $vr)))))
            (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $pj) (v128.load offset=48 (local.get $vr)))))
            (local.set $vr (i32.add (local.get $vr) (local.get $vstride)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jl)))
        (v128.store (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 2))) (local.get $a0))
        (v128.store offset=16 (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 2))) (local.get $a1))
        (v128.store offset=32 (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 2))) (local.get $a2))
        (v128.store offset=48 (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 2))) (local.get $a3))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br $b16)))
    ;; 4 columns at a time
    (block $b4_done
      (loop $b4
        (br_if $b4_done (i32.ge_u (local.get $c) (local.get $len4)))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $vr (i32.add (local.get $v0) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $j4_done
          (loop $j4
            (br_if $j4_done (i32.ge_u (local.get $j) (local.get $t)))
            (local.set $a0 (f32x4.add (local.get $a0)
              (f32x4.mul (f32x4.splat (f32.load (i32.add (local.get $pr) (i32.shl (local.get $j) (i32.const 2))))) (v128.load (local.get $vr)))))
            (local.set $vr (i32.add (local.get $vr) (local.get $vstride)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $j4)))
        (v128.store (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 2))) (local.get $a0))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $b4)))
    ;; the last len mod 4 columns
    (block $b1_done
      (loop $b1
        (br_if $b1_done (i32.ge_u (local.get $c) (local.get $len)))
        (local.set $s (f32.const 0))
        (local.set $vr (i32.add (local.get $v0) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $j1_done
          (loop $j1
            (br_if $j1_done (i32.ge_u (local.get $j) (local.get $t)))
            (local.set $s (f32.add (local.get $s)
              (f32.mul (f32.load (i32.add (local.get $pr) (i32.shl (local.get $j) (i32.const 2)))) (f32.load (local.get $vr)))))
            (local.set $vr (i32.add (local.get $vr) (local.get $vstride)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $j1)))
        (f32.store (i32.add (local.get $o) (i32.shl (local.get $c) (i32.const 2))) (local.get $s))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $b1)))
  )

;; $mix for two rows at once (p rows $pa, $pb; outputs $oa, $ob): they share every load of v.
  ;; Columns in blocks of 16, then of 4, then one by one.
  (func $mix2 (param $pa i32) (param $pb i32) (param $v0 i32) (param $vstride i32) (param $t i32) (param $len i32) (param $oa i32) (param $ob i32)
    (local $c i32) (local $j i32) (local $vr i32) (local $wa v128) (local $wb v128) (local $vv v128) (local $sa f32) (local $sb f32) (local $y f32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $len16 i32) (local $len4 i32) (local $jo i32)
    (local.set $len16 (i32.and (local.get $len) (i32.const -16)))
    (local.set $len4 (i32.and (local.get $len) (i32.const -4)))
    (block $b16_done
      (loop $b16
        (br_if $b16_done (i32.ge_u (local.get $c) (local.get $len16)))
        (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $b0 (v128.const i32x4 0 0 0 0)) (local.set $b1 (v128.const i32x4 0 0 0 0))
        (local.set $b2 (v128.const i32x4 0 0 0 0)) (local.set $b3 (v128.const i32x4 0 0 0 0))
        (local.set $vr (i32.add (local.get $v0) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $j_done
          (loop $jl
            (br_if $j_done (i32.ge_u (local.get $j) (local.get $t)))
            (local.set $jo (i32.shl (local.get $j) (i32.const 2)))
            (local.set $wa (v128.load32_splat (i32.add (local.get $pa) (local.get $jo))))
            (local.set $wb (v128.load32_splat (i32.add (local.get $pb) (local.get $jo))))
            (local.set $vv (v128.load (local.get $vr)))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $wa) (local.get $vv))))
            (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $wb) (local.get $vv))))
            (local.set $vv (v128.load offset=16 (local.get $vr)))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $wa) (local.get $vv))))
            (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $wb) (local.get $vv))))
            (local.set $vv (v128.load offset=32 (local.get $vr)))
            (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $wa) (local.get $vv))))
            (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $wb) (local.get $vv))))
            (local.set $vv (v128.load offset=48 (local.get $vr)))
            (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $wa) (local.get $vv))))
            (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $wb) (local.get $vv))))
            (local.set $vr (i32.add (local.get $vr) (local.get $vstride)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jl)))
        (v128.store (i32.add (local.get $oa) (i32.shl (local.get $c) (i32.const 2))) (local.get $a0))
        (v128.store offset=16 (i32.add (local.get $oa) (i32.shl (local.get $c) (i32.const 2))) (local.get $a1))
        (v128.store offset=32 (i32.add (local.get $oa) (i32.shl (local.get $c) (i32.const 2))) (local.get $a2))
        (v128.store offset=48 (i32.add (local.get $oa) (i32.shl (local.get $c) (i32.const 2))) (local.get $a3))
        (v128.store (i32.add (local.get $ob) (i32.shl (local.get $c) (i32.const 2))) (local.get $b0))
        (v128.store offset=16 (i32.add (local.get $ob) (i32.shl (local.get $c) (i32.const 2))) (local.get $b1))
        (v128.store offset=32 (i32.add (local.get $ob) (i32.shl (local.get $c) (i32.const 2))) (local.get $b2))
        (v128.store offset=48 (i32.add (local.get $ob) (i32.shl (local.get $c) (i32.const 2))) (local.get $b3))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br $b16)))
    (block $b4_done
      (loop $b4
        (br_if $b4_done (i32.ge_u (local.get $c) (local.get $len4)))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $b0 (v128.const i32x4 0 0 0 0))
        (local.set $vr (i32.add (local.get $v0) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $j4_done
          (loop $j4
            (br_if $j4_done (i32.ge_u (local.get $j) (local.get $t)))
            (local.set $jo (i32.shl (local.get $j) (i32.const 2)))
            (local.set $vv (v128.load (local.get $vr)))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load32_splat (i32.add (local.get $pa) (local.get $jo))) (local.get $vv))))
            (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load32_splat (i32.add (local.get $pb) (local.get $jo))) (local.get $vv))))
            (local.set $vr (i32.add (local.get $vr) (local.get $vstride)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $j4)))
        (v128.store (i32.add (local.get $oa) (i32.shl (local.get $c) (i32.const 2))) (local.get $a0))
        (v128.store (i32.add (local.get $ob) (i32.shl (local.get $c) (i32.const 2))) (local.get $b0))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $b4)))
    (block $b1_done
      (loop $b1
        (br_if $b1_done (i32.ge_u (local.get $c) (local.get $len)))
        (local.set $sa (f32.const 0))
        (local.set $sb (f32.const 0))
        (local.set $vr (i32.add (local.get $v0) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $j1_done
          (loop $j1
            (br_if $j1_done (i32.ge_u (local.get $j) (local.get $t)))
            (local.set $jo (i32.shl (local.get $j) (i32.const 2)))
            (local.set $y (f32.load (local.get $vr)))
            (local.set $sa (f32.add (local.get $sa) (f32.mul (f32.load (i32.add (local.get $pa) (local.get $jo))) (local.get $y))))
            (local.set $sb (f32.add (local.get $sb) (f32.mul (f32.load (i32.add (local.get $pb) (local.get $jo))) (local.get $y))))
            (local.set $vr (i32.add (local.get $vr) (local.get $vstride)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $j1)))
        (f32.store (i32.add (local.get $oa) (i32.shl (local.get $c) (i32.const 2))) (local.get $sa))
        (f32.store (i32.add (local.get $ob) (i32.shl (local.get $c) (i32.const 2))) (local.get $sb))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $b1)))
  )

  (func (export "attention") (param $x i32) (param $n i32) (param $t i32) (param $h i32) (param $dh i32)
                             (param $scale f32) (param $out i32) (param $p i32)
    (local $s i32) (local $c i32) (local $i i32) (local $j i32)
    (local $d i32) (local $xstride i32) (local $ostride i32)
    (local $qcol i32) (local $kcol i32) (local $vcol i32) (local $xs i32)
    (local $qrow i32) (local $prow i32) (local $prow2 i32) (local $orow i32) (local $kj i32)
    (local.set $d (i32.mul (local.get $h) (local.get $dh)))
    (local.set $xstride (i32.mul (local.get $d) (i32.const 12)))
    (local.set $ostride (i32.shl (local.get $d) (i32.const 2)))
    (block $samples_done
      (loop $samples
        (br_if $samples_done (i32.ge_u (local.get $s) (local.get $n)))
        (local.set $xs (i32.add (local.get $x) (i32.mul (i32.mul (local.get $s) (local.get $t)) (local.get $xstride))))
        (local.set $c (i32.const 0))
        (block $heads_done
          (loop $heads
            (br_if $heads_done (i32.ge_u (local.get $c) (local.get $h)))
            (local.set $qcol (i32.add (local.get $xs) (i32.shl (i32.mul (local.get $c) (local.get $dh)) (i32.const 2))))
            (local.set $kcol (i32.add (local.get $qcol) (local.get $ostride)))
            (local.set $vcol (i32.add (local.get $kcol) (local.get $ostride)))
            (local.set $i (i32.const 0))
            ;; two query rows at a time
            (block $pairs_done
              (loop $pairs
                (br_if $pairs_done (i32.ge_u (i32.add (local.get $i) (i32.const 1)) (local.get $t)))
                (local.set $qrow (i32.add (local.get $qcol) (i32.mul (local.get $i) (local.get $xstride))))
                (local.set $prow (i32.add (local.get $p)
                  (i32.shl (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $s) (local.get $h)) (local.get $c)) (local.get $t)) (local.get $i)) (local.get $t)) (i32.const 2))))
                (local.set $prow2 (i32.add (local.get $prow) (i32.shl (local.get $t) (i32.const 2))))
                (local.set $j (i32.const 0))
                (block $quads2_done
                  (loop $quads2
                    (br_if $quads2_done (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $t)))
                    (local.set $kj (i32.add (local.get $kcol) (i32.mul (local.get $j) (local.get $xstride))))
                    (call $dot2x4 (local.get $qrow) (i32.add (local.get $qrow) (local.get $xstride))
                      (local.get $kj)
                      (i32.add (local.get $kj) (local.get $xstride))
                      (i32.add (local.get $kj) (i32.shl (local.get $xstride) (i32.const 1)))
                      (i32.add (local.get $kj) (i32.mul (local.get $xstride) (i32.const 3)))
                      (local.get $dh) (local.get $scale)
                      (i32.add (local.get $prow) (i32.shl (local.get $j) (i32.const 2)))
                      (i32.add (local.get $prow2) (i32.shl (local.get $j) (i32.const 2))))
                    (local.set $j (i32.add (local.get $j) (i32.const 4)))
                    (br $quads2)))
                (block $ones2_done
                  (loop $ones2
                    (br_if $ones2_done (i32.ge_u (local.get $j) (local.get $t)))
                    (local.set $kj (i32.add (local.get $kcol) (i32.mul (local.get $j) (local.get $xstride))))
                    (call $dot1 (local.get $qrow) (local.get $kj) (local.get $dh) (local.get $scale)
                      (i32.add (local.get $prow) (i32.shl (local.get $j) (i32.const 2))))
                    (call $dot1 (i32.add (local.get $qrow) (local.get $xstride)) (local.get $kj) (local.get $dh) (local.get $scale)
                      (i32.add (local.get $prow2) (i32.shl (local.get $j) (i32.const 2))))
                    (local.set $j (i32.add (local.get $j) (i32.const 1)))
                    (br $ones2)))
                (call $softmax (local.get $prow) (local.get $t))
                (call $softmax (local.get $prow2) (local.get $t))
                (local.set $orow (i32.add (local.get $out)
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $s) (local.get $t)) (local.get $i)) (local.get $ostride))
                           (i32.shl (i32.mul (local.get $c) (local.get $dh)) (i32.const 2)))))
                (call $mix2 (local.get $prow) (local.get $prow2) (local.get $vcol) (local.get $xstride) (local.get $t) (local.get $dh)
                  (local.get $orow) (i32.add (local.get $orow) (local.get $ostride)))
                (local.set $i (i32.add (local.get $i) (i32.const 2)))
                (br $pairs)))
            ;; the last row when T is odd
            (block $rows_done
              (loop $rows
                (br_if $rows_done (i32.ge_u (local.get $i) (local.get $t)))
                (local.set $qrow (i32.add (local.get $qcol) (i32.mul (local.get $i) (local.get $xstride))))
                ;; p row (s, c, i)
                (local.set $prow (i32.add (local.get $p)
                  (i32.shl (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $s) (local.get $h)) (local.get $c)) (local.get $t)) (local.get $i)) (local.get $t)) (i32.const 2))))
                (local.set $j (i32.const 0))
                (block $quads_done
                  (loop $quads
                    (br_if $quads_done (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $t)))
                    (local.set $kj (i32.add (local.get $kcol) (i32.mul (local.get $j) (local.get $xstride))))
                    (call $dot4 (local.get $qrow)
                      (local.get $kj)
                      (i32.add (local.get $kj) (local.get $xstride))
                      (i32.add (local.get $kj) (i32.shl (local.get $xstride) (i32.const 1)))
                      (i32.add (local.get $kj) (i32.mul (local.get $xstride) (i32.const 3)))
                      (local.get $dh) (local.get $scale)
                      (i32.add (local.get $prow) (i32.shl (local.get $j) (i32.const 2))))
                    (local.set $j (i32.add (local.get $j) (i32.const 4)))
                    (br $quads)))
                (block $ones_done
                  (loop $ones
                    (br_if $ones_done (i32.ge_u (local.get $j) (local.get $t)))
                    (call $dot1 (local.get $qrow)
                      (i32.add (local.get $kcol) (i32.mul (local.get $j) (local.get $xstride)))
                      (local.get $dh) (local.get $scale)
                      (i32.add (local.get $prow) (i32.shl (local.get $j) (i32.const 2))))
                    (local.set $j (i32.add (local.get $j) (i32.const 1)))
                    (br $ones)))
                (call $softmax (local.get $prow) (local.get $t))
                (call $mix (local.get $prow) (local.get $vcol) (local.get $xstride) (local.get $t) (local.get $dh)
                  (i32.add (local.get $out)
                    (i32.add (i32.mul (i32.add (i32.mul (local.get $s) (local.get $t)) (local.get $i)) (local.get $ostride))
                             (i32.shl (i32.mul (local.get $c) (local.get $dh)) (i32.const 2)))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $rows)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $heads)))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $samples))))
)
