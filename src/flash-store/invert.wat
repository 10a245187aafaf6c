(module
  (import "env" "memory" (memory 1))
  (func (export "invert") (param $p i32) (param $n i32) (result i32)
    (local $end i32) (local $v v128) (local $acc v128) (local $b i32) (local $any i32)
    (local.set $end (i32.add (local.get $p) (i32.and (local.get $n) (i32.const -16))))
    (block $chunksDone
      (loop $chunks
        (br_if $chunksDone (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (v128.load (local.get $p)))
        (local.set $acc (v128.or (local.get $acc) (local.get $v)))
        (v128.store (local.get $p) (v128.not (local.get $v)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $chunks)))
    (local.set $end (i32.add (local.get $p) (i32.and (local.get $n) (i32.const 15))))
    (block $bytesDone
      (loop $bytes
        (br_if $bytesDone (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $b (i32.load8_u (local.get $p)))
        (local.set $any (i32.or (local.get $any) (local.get $b)))
        (i32.store8 (local.get $p) (i32.xor (local.get $b) (i32.const 255)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $bytes)))
    (i32.or (v128.any_true (local.get $acc)) (i32.ne (local.get $any) (i32.const 0)))))
