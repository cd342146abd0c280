#!/usr/bin/env bash
# The check of the WebGPU route on a lent GPU machine (the `device` tool), as one prepared script.
#
# That machine has no package registry and no Node.js in its image, and a call carries at most
# 64 MiB, so what it lacks is gathered here first into .gpucheck/ (ignored by git; carry it):
#
#   scripts/gpu-check.sh pack      here: Debian's Vulkan loader packages (.gpucheck/gl/*.deb, the
#                                  README of the device tool names them) and one archive of this
#                                  machine's node and of the node_modules files the checks open
#                                  (found by running them under strace here, on lavapipe)
#   scripts/gpu-check.sh           there, as the command of a `run` with carry [".gpucheck"]:
#                                  unpacks both, finds the NVIDIA Vulkan driver, then
#                                  1. the WebGPU adapter Dawn sees            -> $OUT/adapter.json
#                                  2. the compute tests on webgpu (cpu as the reference of
#                                     "backends agree")                       -> $OUT/compute-tests.log
#                                  3. bench:akg --backends webgpu,wasm        -> $OUT/akg.json
#                                  4. bench:seed on webgpu, if bench/seed.ts exists -> $OUT/seed.json
#                                  5. webgpu against wasm from akg.json (throughput ratios, largest
#                                     K difference)                           -> $OUT/summary.json
#                                  and the whole log                          -> $OUT/gpu-check.log
#
# Each step has its own time limit, so one slow step cannot use up the device time of the others
# (GPU_CHECK_TESTS_S, GPU_CHECK_AKG_S, GPU_CHECK_SEED_S; 600 s in all at most, the tool's limit).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
G=$ROOT/.gpucheck

# The files to carry: those traced, and every file (less maps, types and docs) of the packages they
# are in, since a run can resolve another entry of a package than the traced one did (a require
# where the trace saw an import); the large packages (tfjs, Dawn, Prisma's client, TypeScript,
# esbuild's binary) only as traced.
bundle_files() {
  cat "$1"
  grep -oE '^node_modules/(@[^/]+/[^/]+|[^@/][^/]*)' "$1" | sort -u |
    grep -vE '^node_modules/(@tensorflow/|webgpu$|@prisma/client$|typescript$|@esbuild/)' |
    xargs -r -I{} find {} -type f ! -name '*.map' ! -name '*.d.ts' ! -name '*.d.mts' ! -name '*.d.cts' ! -name '*.md' ! -path '*/test/*' ! -path '*/docs/*'
}

if [ "${1:-run}" = pack ]; then
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  grep -qxF '/.gpucheck/' "$exclude" 2>/dev/null || echo '/.gpucheck/' >>"$exclude"
  rm -rf "$G" && mkdir -p "$G/gl" /tmp/amd64/partial
  # The Vulkan loader (and the GL dispatch libraries NVIDIA's ICD library links), amd64 whatever
  # this machine is, from the Debian archive this machine's apt uses.
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" update -qq
  (cd "$G/gl" && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  [ "$(uname -m)" = x86_64 ] || { echo "gpu-check pack: node_modules and node must be x86-64 builds (this is $(uname -m))" >&2; exit 1; }
  # Every node_modules file the checks open: the compute tests on webgpu (with a pool, so the
  # worker-thread bootstrap too) and the benches at tiny sizes.
  t=$(mktemp -d)
  trace() { strace -f -z -qq -e trace=openat,execve -o "$t/trace.$1" "${@:2}" >/dev/null 2>&1 || true; }
  export TANGENT_FROM_SOURCE=1
  TANGENT_TEST_BACKENDS=webgpu trace tests node --import tsx --test --test-force-exit test/compute/backend.test.ts test/compute/generic.test.ts test/compute/mantis.test.ts
  trace akg node --import tsx bench/akg.ts --json --quick --arch all --backends webgpu,wasm --mantis-backends webgpu --mantis-head-n 1 --mantis-all-n 1 --n 2 --cross 2 --chunk 2 --repeat 1 --no-torch
  if [ -f bench/seed.ts ]; then trace seed node --import tsx bench/seed.ts --json --backend webgpu --no-torch --points 2 --track 4 --epochs 1 --cache on; fi
  grep -ohE '"'"$ROOT"'/node_modules/[^"]+"' "$t"/trace.* | tr -d '"' | sort -u | while read -r f; do [ -f "$f" ] && echo "${f#"$ROOT"/}"; done >"$t/traced"
  bundle_files "$t/traced" >"$t/files"
  mkdir -p "$t/bin" && cp "$(command -v node)" "$t/bin/node"
  sort -u -o "$t/files" "$t/files"
  tar -cf - -C "$ROOT" -T "$t/files" -C "$t" bin | xz -T0 -4 >"$G/bundle.tar.xz"
  echo "gpu-check pack: $(wc -l <"$t/files") node_modules files and node $(node --version); .gpucheck is $(du -sh "$G" | cut -f1)"
  rm -rf "$t"
  exit 0
fi

OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
step() { echo "== $(date -u +%T) $*"; }

step unpack
[ -f "$G/bundle.tar.xz" ] || { echo "no .gpucheck/bundle.tar.xz: run scripts/gpu-check.sh pack here and carry .gpucheck" >&2; exit 1; }
# The loaders only where there are none (the device README's recipe): unpacked over / they would
# replace a machine's own.
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in "$G"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
ldconfig -p | grep -q libvulkan.so.1 || echo "warning: no libvulkan.so.1 after unpacking"
mkdir -p /tmp/gpucheck && xz -dc "$G/bundle.tar.xz" | tar -xf - -C /tmp/gpucheck
# node_modules from the bundle where the tree has none (the device's copy); a checkout's own stays.
[ -e node_modules ] || mv /tmp/gpucheck/node_modules node_modules
command -v node >/dev/null || export PATH=/tmp/gpucheck/bin:$PATH
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd; break; fi
done
echo "node $(node --version); VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
export TANGENT_FROM_SOURCE=1

step adapter
node --import tsx --input-type=module -e "
  import fs from 'node:fs';
  import { probeAdapter } from './src/compute/webgpu.ts';
  const p = await probeAdapter();
  console.log(JSON.stringify(p));
  fs.writeFileSync(process.env.OUT + '/adapter.json', JSON.stringify(p) + '\n');
  process.exit(0);
"

step "compute tests on webgpu (cpu as the reference)"
set +e
TANGENT_TEST_BACKENDS=webgpu,cpu timeout "${GPU_CHECK_TESTS_S:-150}" node --import tsx --test --test-force-exit --test-reporter=spec test/compute/*.test.ts >"$OUT/compute-tests.log" 2>&1
tests=$?
grep -E '^ℹ (tests|pass|fail|skipped|duration_ms)|^✖' "$OUT/compute-tests.log" | head -40
echo "compute tests: exit $tests"

step "bench:akg --backends webgpu,wasm"
timeout "${GPU_CHECK_AKG_S:-240}" node --import tsx bench/akg.ts --json --backends webgpu,wasm --n 128 --cross 128 --repeat 2 --mantis-backends webgpu,wasm --mantis-head-n 32 --mantis-all-n 2 --no-torch >"$OUT/akg.out" 2>"$OUT/akg.err"
akg=$?
tail -n 1 "$OUT/akg.out" >"$OUT/akg.json"
rm -f "$OUT/akg.out"
tail -n 30 "$OUT/akg.err"
rm -f "$OUT/akg.err"
echo "bench:akg: exit $akg"

seed=skipped
if [ -f bench/seed.ts ]; then
  step "bench:seed on webgpu"
  # The source experiment at a tenth of its points and epochs (GPU_CHECK_SEED_ARGS), to fit the time.
  # shellcheck disable=SC2086
  timeout "${GPU_CHECK_SEED_S:-120}" node --import tsx bench/seed.ts --json --backend webgpu --no-torch ${GPU_CHECK_SEED_ARGS:---points 45 --epochs 5 --cache on} >"$OUT/seed.out" 2>"$OUT/seed.err"
  seed=$?
  tail -n 1 "$OUT/seed.out" >"$OUT/seed.json"
  tail -n 20 "$OUT/seed.err"
  rm -f "$OUT/seed.out" "$OUT/seed.err"
  echo "bench:seed: exit $seed"
else
  echo "bench/seed.ts is not in this tree: bench:seed skipped"
fi
set -e

step summary
node -e "
  const fs = require('node:fs');
  const out = process.env.OUT;
  const read = (f) => { try { return JSON.parse(fs.readFileSync(out + '/' + f, 'utf8')); } catch { return null; } };
  const akg = read('akg.json');
  const rows = (akg?.results ?? []).filter((r) => !r.skipped);
  const row = (arch, backend, threads) => rows.find((r) => r.arch === arch && r.backend === backend && r.threads === threads);
  const vsWasm = [];
  for (const arch of ['cnn1d', 'transformer']) {
    const g = row(arch, 'webgpu', 1);
    if (!g) continue;
    for (const w of rows.filter((r) => r.arch === arch && r.backend === 'wasm')) {
      vsWasm.push({ arch, wasmThreads: w.threads, selfK: g.selfK.samplesPerSecond / w.selfK.samplesPerSecond, crossK: g.crossK.pairsPerSecond / w.crossK.pairsPerSecond, webgpuSelfKPerS: g.selfK.samplesPerSecond, wasmSelfKPerS: w.selfK.samplesPerSecond });
    }
  }
  const mantis = (akg?.mantis?.results ?? []).filter((r) => !r.skipped).map((r) => ({ backend: r.backend, headSecondsPer100: r.head.secondsPer100, allSecondsPer100: r.all.secondsPer100 }));
  const summary = {
    adapter: read('adapter.json'),
    computeTests: { exit: Number('$tests') },
    akg: { exit: Number('$akg'), webgpuVsWasm: vsWasm, maxRelKWebgpuVsWasm: akg?.backendAgreement ?? null, mantis },
    seed: '$seed' === 'skipped' ? 'skipped: bench/seed.ts is not in this tree' : { exit: Number('$seed') },
  };
  fs.writeFileSync(out + '/summary.json', JSON.stringify(summary, null, 2) + '\n');
  console.log(JSON.stringify(summary));
"
