/**
 * `tsx bench/cpu-profile.ts <file.cpuprofile>…`: where a server's CPU time went, by layer of the
 * request path, from profiles written by `node --cpu-prof` (bench:load --profile <dir>). Each
 * sample is charged to the innermost frame whose script belongs to a known layer (so a builtin
 * like JSON.stringify counts for the layer that called it); the top self-time functions follow.
 * Prints text, then one JSON line.
 */
import { readFileSync } from 'node:fs';

interface Frame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: Frame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/** Layers, first match wins: a script's path (or a pseudo-frame's name) → the layer it belongs to. */
const LAYERS: [string, RegExp][] = [
  ['idle', /^\(idle\)$/],
  ['gc', /^\(garbage collector\)$/],
  ['program', /^\(program\)$/],
  ['request ids', /dist\/platform\/http\/request-id\.js/],
  ['rate limits', /dist\/platform\/http\/rate-limit\.js|dist\/platform\/db\/rate-limit-storage\.js|rate-limiter-flexible/],
  ['auth', /dist\/platform\/auth\/|dist\/modules\/api-keys\//],
  ['input guard', /dist\/platform\/http\/input-guard\.js/],
  ['armor validation', /graphql-armor|dist\/platform\/http\/limits\.js/],
  ['context and loaders', /dist\/modules\/context\.js|dist\/modules\/loaders\.js|dist\/modules\/[^/]+\/loaders[^/]*\.js|dist\/platform\/db\/loader-rows\.js|dataloader/],
  ['compiled execution', /dist\/platform\/http\/compiled-execution\.js|graphql-jit/],
  ['HTTP fast path', /dist\/platform\/http\/fast-graphql\.js/],
  ['logging', /pino|sonic-boom|thread-stream/],
  ['database driver', /node_modules\/(pg|pg-protocol|pg-pool|pg-types|@prisma|@electric-sql|postgres-)|dist\/platform\/db\//],
  ['resolvers and services', /dist\/modules\/|dist\/platform\/graphql\/|dist\/platform\/values\//],
  ['graphql-js (parse, validate, execute)', /node_modules\/graphql\//],
  ['Apollo Server', /@apollo\/|@as-integrations/],
  ['HTTP middleware (express, body parsing, cors)', /node_modules\/(express|router|body-parser|raw-body|cors|finalhandler|send|serve-static|type-is|content-type|iconv-lite|qs|on-finished|negotiator|accepts|mime|parseurl|depd|http-errors)/],
  ['node http/net', /^node:(_http|http|net|internal\/http|internal\/stream|stream|internal\/streams)/],
  ['other tangent', /dist\//],
];

function layerOf(frame: Frame): string | null {
  const key = frame.url || frame.functionName;
  for (const [layer, pattern] of LAYERS) if (pattern.test(key)) return layer;
  return null;
}

const files = process.argv.slice(2);
const summaries = files.map((file) => {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const layerMemo = new Map<number, string>();
  const layerFor = (id: number): string => {
    const cached = layerMemo.get(id);
    if (cached) return cached;
    let at: number | undefined = id;
    let found = 'other (node internals, native)';
    while (at !== undefined) {
      const layer = layerOf(byId.get(at)!.callFrame);
      if (layer) { found = layer; break; }
      at = parent.get(at);
    }
    layerMemo.set(id, found);
    return found;
  };
  const layers = new Map<string, number>();
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    layers.set(layerFor(id), (layers.get(layerFor(id)) ?? 0) + dt);
    const f = byId.get(id)!.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^.*\/dist\//, 'dist/')}:${f.lineNumber + 1}`;
    self.set(name, (self.get(name) ?? 0) + dt);
  });
  const busy = total - (layers.get('idle') ?? 0);
  const pct = (us: number) => Math.round((us / busy) * 1000) / 10;
  const layerRows = [...layers].filter(([l]) => l !== 'idle').sort((a, b) => b[1] - a[1]).map(([layer, us]) => ({ layer, ms: Math.round(us / 1000), pct: pct(us) }));
  const top = [...self].filter(([n]) => !n.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, 25).map(([fn, us]) => ({ fn, ms: Math.round(us / 1000), pct: pct(us) }));
  console.log(`\n${file}: ${Math.round(busy / 1000)} ms busy of ${Math.round(total / 1000)} ms`);
  for (const r of layerRows) console.log(`  ${r.layer.padEnd(46)} ${String(r.pct).padStart(5)} %  ${r.ms} ms`);
  console.log('  top self time:');
  for (const r of top) console.log(`    ${String(r.pct).padStart(5)} %  ${r.fn}`);
  return { file, busyMs: Math.round(busy / 1000), layers: layerRows, top };
});
console.log(JSON.stringify(summaries));
