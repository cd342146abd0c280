;; LayerNormalization over the last axis, forward, in the memory of the tfjs wasm backend
;; (imported), addressed by byte offsets: for each of $rows rows of $c values of x,
;;   rstd = 1/√(var + ε) (biased variance), xhat = (x − mean)·rstd, out = xhat·γ + β,
;; γ and β [c] optional ($flags bit 0: γ, bit 1: β); out and xhat [rows, c], rstd [rows].
;;
;; tfjs composes it from 9 kernels (moments, broadcast subtraction and products), each a pass over
;; the activations with its own allocation; this is three passes. Everything up to x̂ is computed
;; in f64 (tfjs: f32, where x − mean cancels) and rounded to f32 once; γ and β apply in f32.
;;
;; Build: wat2wasm layernorm.wat -o layernorm.wasm (wabt 1.0.39), then
;;   node -e "process.stdout.write(require('fs').readFileSync('layernorm.wasm').toString('base64'))"
;; into layernorm-wasm.ts.
(module
  (import "env" "memory" (memory 0))

  (func (export "layernorm") (param $x i32) (param $rows i32) (param $c i32) (param $gamma i32) (param $beta i32)
                             (param $flags i32) (param $eps f64) (param $out i32) (param $xhat i32) (param $rstd i32)
    (local $r i32) (local $j i32) (local $row i32) (local $at i32) (local $end i32)
    (local $sum f64) (local $d f64) (local $mean f64) (local $rs f64) (local $h f32) (local $y f32)
    (block $rows_done
      (loop $rowl
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.shl (i32.mul (local.get $r) (local.get $c)) (i32.const 2)))
        (local.set $end (i32.add (local.get $x) (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))))
        ;; mean
        (local.set $sum (f64.const 0))
        (local.set $at (i32.add (local.get $x) (local.get $row)))
        (block $m_done
          (loop $ml
            (br_if $m_done (i32.ge_u (local.get $at) (local.get $end)))
            (local.set $sum (f64.add (local.get $sum) (f64.promote_f32 (f32.load (local.get $at)))))
            (local.set $at (i32.add (local.get $at) (i32.const 4)))
            (br $ml)))
        (local.set $mean (f64.div (local.get $sum) (f64.convert_i32_u (local.get $c))))
        ;; variance
        (local.set $sum (f64.const 0))
        (local.set $at (i32.add (local.get $x) (local.get $row)))
        (block $v_done
          (loop $vl
            (br_if $v_done (i32.ge_u (local.get $at) (local.get $end)))
            (local.set $d (f64.sub (f64.promote_f32 (f32.load (local.get $at))) (local.get $mean)))
            (local.set $sum (f64.add (local.get $sum) (f64.mul (local.get $d) (local.get $d))))
            (local.set $at (i32.add (local.get $at) (i32.const 4)))
            (br $vl)))
        (local.set $rs (f64.div (f64.const 1)
          (f64.sqrt (f64.add (f64.div (local.get $sum) (f64.convert_i32_u (local.get $c))) (local.get $eps)))))
        (f32.store (i32.add (local.get $rstd) (i32.shl (local.get $r) (i32.const 2))) (f32.demote_f64 (local.get $rs)))
        ;; outputs
        (local.set $j (i32.const 0))
        (block $o_done
          (loop $ol
            (br_if $o_done (i32.ge_u (local.get $j) (local.get $c)))
            (local.set $at (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $h (f32.demote_f64 (f64.mul (f64.sub (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $at)))) (local.get $mean)) (local.get $rs))))
            (f32.store (i32.add (local.get $xhat) (local.get $at)) (local.get $h))
            (local.set $y (local.get $h))
            (if (i32.and (local.get $flags) (i32.const 1))
              (then (local.set $y (f32.mul (local.get $y) (f32.load (i32.add (local.get $gamma) (i32.shl (local.get $j) (i32.const 2))))))))
            (if (i32.and (local.get $flags) (i32.const 2))
              (then (local.set $y (f32.add (local.get $y) (f32.load (i32.add (local.get $beta) (i32.shl (local.get $j) (i32.const 2))))))))
            (f32.store (i32.add (local.get $out) (local.get $at)) (local.get $y))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $ol)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowl))))
)
