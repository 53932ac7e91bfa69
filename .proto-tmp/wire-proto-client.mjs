import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { protocol, WORKER_CHANNEL_OPTIONS, PROTOCOL_VERSION } from '/work/wt-wire/dist/common/protocol.js';
const MIB = 1 << 20;
const mib = 256;
const peer = spawn(process.execPath, ['/work/wt-wire/.proto-tmp/wire-proto-peer.mjs', String(mib)], { stdio: ['pipe', 'pipe', 'inherit'] });
const { grpc: port } = JSON.parse(await new Promise((r) => createInterface({ input: peer.stdout }).once('line', r)));
const dest = new Uint8Array(mib * MIB);
const Coordinator = protocol().mtl.v1.Coordinator;
let frames = 0;
function findStream(root) {
  const seen = new Set(); let level = [root];
  for (let d = 0; d < 10 && level.length; d++) {
    const next = [];
    for (const o of level) {
      if (!o || typeof o !== 'object' || seen.has(o)) continue; seen.add(o);
      if (o.http2Stream) return o.http2Stream;
      for (const k of Object.keys(o)) { const v = o[k]; if (v && typeof v === 'object' && !(v instanceof Uint8Array)) next.push(v); }
    }
    level = next;
  }
}
function findSession(root) {
  const seen = new Set(); let level = [root];
  for (let d = 0; d < 10 && level.length; d++) {
    const next = [];
    for (const o of level) {
      if (!o || typeof o !== 'object' || seen.has(o)) continue; seen.add(o);
      if (o.http2Stream && o.http2Stream.session) return o.http2Stream.session;
      for (const k of Object.keys(o)) { const v = o[k]; if (v && typeof v === 'object' && !(v instanceof Uint8Array)) next.push(v); }
    }
    level = next;
  }
}
async function run(n) {
  const clients = Array.from({ length: n }, () => new Coordinator(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { ...WORKER_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 }));
  await Promise.all(clients.map((c) => new Promise((res, rej) => c.waitForReady(Date.now() + 10000, (e) => (e ? rej(e) : res())))));
  const t0 = performance.now();
  let received = 0;
  await new Promise((resolve) => {
    clients.forEach((c, i) => {
      const call = c.Connect();
      let tuned = false;
      call.on('data', (m) => { if (!tuned && process.env.BIG) { tuned = true; const s = findSession(call); if (!s) console.error('no session'); else { s.settings({ maxFrameSize: (1 << 20) }, () => console.error('acked', s.localSettings.maxFrameSize)); } }
        if (!call.__counted) { call.__counted = true; const s = findSession(call); const st = findStream(call); st.on('data', (d) => { frames++; }); } if (m.kind === 'chunk') { dest.set(m.chunk.data, m.chunk.offset); received += m.chunk.data.byteLength; if (received === dest.byteLength) resolve(); } });
      call.on('error', () => undefined);
      call.write({ hello: { name: `b:${n}:${i}`, protocolVersion: PROTOCOL_VERSION, backend: 'x', device: 'cpu', capacity: 1, token: '' } });
    });
  });
  const ms = performance.now() - t0; console.error('frames', frames, findSession(clients[0])?.localSettings?.maxFrameSize, 'cpu', JSON.stringify(process.cpuUsage())); frames = 0;
  for (const c of clients) c.close();
  return (mib * MIB) / ms / 1e3;
}
const res = {};
for (let rep = 0; rep < 4; rep++) for (const n of (process.env.NS ?? '1,2,3,4').split(',').map(Number)) { const v = await run(n); if (rep > 0) (res[n] ??= []).push(v.toFixed(0)); }
console.log(JSON.stringify(res));
peer.kill('SIGINT');
