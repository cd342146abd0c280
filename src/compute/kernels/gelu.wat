;; GELU (exact form, tf.layers 'gelu'): out = z · ½ · (1 + erf(z/√2)) for $n float32 values at
;; $x into $out (may be the same), in the memory of the tfjs wasm backend (imported), by byte
;; offsets.
;;
;; tfjs evaluates it as five elementwise kernels, of which its erf alone cost more than the
;; products of the layer it follows (Mantis's mlp1). Here one pass in f64: erf by the rational
;; approximation of Eigen's float erf (odd polynomial of degree 13 over one of degree 8 in x;
;; |error| < 7e-8 against the exact erf, about float32's half-ulp at 1; ±1 from |x| = 4 on),
;; rounded to float32 once. Within 1 float32 ulp of the float64 GELU, as tfjs's own is.
;;
;; Build: wat2wasm gelu.wat -o gelu.wasm (wabt 1.0.39), then
;;   node -e "process.stdout.write(require('fs').readFileSync('gelu.wasm').toString('base64'))"
;; into gelu-wasm.ts.
(module
  (import "env" "memory" (memory 0))

  (func $erf (param $x f64) (result f64)
    (local $x2 f64) (local $p f64) (local $q f64)
    ;; |x| ≥ 4: ±1 (erf(4) = 1 − 1.5e-8), so that the negative tail of GELU is 0 as in float32
    (if (f64.ge (f64.abs (local.get $x)) (f64.const 4)) (then (return (f64.copysign (f64.const 1) (local.get $x)))))
    (local.set $x2 (f64.mul (local.get $x) (local.get $x)))
    (local.set $p (f64.const -2.72614225801306e-10))
    (local.set $p (f64.add (f64.mul (local.get $p) (local.get $x2)) (f64.const 2.77068142495902e-08)))
    (local.set $p (f64.add (f64.mul (local.get $p) (local.get $x2)) (f64.const -2.10102402082508e-06)))
    (local.set $p (f64.add (f64.mul (local.get $p) (local.get $x2)) (f64.const -5.69250639462346e-05)))
    (local.set $p (f64.add (f64.mul (local.get $p) (local.get $x2)) (f64.const -7.34990630326855e-04)))
    (local.set $p (f64.add (f64.mul (local.get $p) (local.get $x2)) (f64.const -2.95459980854025e-03)))
    (local.set $p (f64.add (f64.mul (local.get $p) (local.get $x2)) (f64.const -1.60960333262415e-02)))
    (local.set $q (f64.const -1.45660718464996e-05))
    (local.set $q (f64.add (f64.mul (local.get $q) (local.get $x2)) (f64.const -2.13374055278905e-04)))
    (local.set $q (f64.add (f64.mul (local.get $q) (local.get $x2)) (f64.const -1.68282697438203e-03)))
    (local.set $q (f64.add (f64.mul (local.get $q) (local.get $x2)) (f64.const -7.37332916720468e-03)))
    (local.set $q (f64.add (f64.mul (local.get $q) (local.get $x2)) (f64.const -1.42647390514189e-02)))
    (f64.div (f64.mul (local.get $x) (local.get $p)) (local.get $q)))

  (func (export "gelu") (param $x i32) (param $n i32) (param $out i32)
    (local $i i32) (local $end i32) (local $z f64)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $z (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $i)))))
        (f32.store (i32.add (local.get $out) (local.get $i))
          (f32.demote_f64 (f64.mul (f64.mul (local.get $z) (f64.const 0.5))
            (f64.add (f64.const 1) (call $erf (f64.mul (local.get $z) (f64.const 0.7071067811865476)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $l))))
)
