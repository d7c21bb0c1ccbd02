import { readFileSync } from 'node:fs';
import { type CommandSpec, UsageError, type Values, WS_URL } from './options.js';
import { readLog } from '../../device/index.js';
import { ProtocolError } from '../../protocol/index.js';
import { show } from '../conformance/client.js';
import { BARRIER_SEQ, LAST_PING_SEQ, replay, type ReplayedSession } from '../replay/replay.js';

export const REPLAY: CommandSpec = {
  name: 'replay',
  summary: "re-send a recorded session's frames to a device, print the replies",
  positionals: [{ name: 'recording', description: "a VGPULOG1 file: what 'vgpu-dirty device --log FILE' writes, and the fuzzer's saved failures (docs/protocol.md §12.4)" }],
  description: `Re-sends the frames of a recording to a device and prints, per recorded session, the frames sent and the replies.

Each session gets its own connection; frames go exactly as recorded and in recorded order, with the recorded gap (at most 1 s) where the session changes (a control gpuWrite naming a recorded session is rewritten to that session's new id). A session still open at the end gets a barrier fence (seq 2^53-2) and, once every barrier is signalled, a ping (seq 2^53-1): its pong follows every reply the recording caused. For equal results, replay against a device started with the recorded device's options.`,
  options: [
    { name: 'device', type: 'string', value: 'URL', ...WS_URL, defaultText: "a fresh in-process reference device with default options; its control token is taken from the recording's first control hello", description: 'replay against this device' },
    { name: 'json', type: 'flag', description: 'one JSON object instead of text (bins as hex)' },
  ],
  epilogue: 'Exit codes: 0 replayed, 1 a session was closed with 1011 (a device bug reproduced), 2 bad arguments or an unreadable recording.',
  run: (args, positionals, io) => replayCommand(args, positionals[0], io.out),
};

async function replayCommand(a: Values, file: string | undefined, out: (line: string) => void): Promise<number> {
  if (file === undefined) throw new UsageError('replay needs a recording file');
  const url = a.device as string | undefined;
  let entries;
  try {
    entries = readLog(readFileSync(file));
  } catch (e) {
    throw new UsageError(`cannot read recording ${file}: ${(e as Error).message}`);
  }
  const report = await replay(entries, { url });
  if (a.json) {
    out(JSON.stringify(report, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v), 2));
  } else {
    out(`replay of ${file}: ${report.sessions.length} session(s), ${entries.length} frame(s) → ${report.url}${report.inProcess ? ' (in-process device)' : ''}`);
    for (const s of report.sessions) for (const line of describe(s)) out(line);
  }
  return report.sessions.some((s) => s.closed?.code === 1011) ? 1 : 0;
}

function describe(s: ReplayedSession): string[] {
  const lines = ['', `session ${s.recorded}${s.session !== undefined ? ` → ${s.session}` : ''} (${s.sent.length} frame(s))`];
  for (const f of s.sent) {
    const what = f.msg instanceof ProtocolError && f.msg.code === 'malformed'
      ? `malformed (${f.bytes.length} bytes: ${Buffer.from(f.bytes.subarray(0, 24)).toString('hex')}${f.bytes.length > 24 ? '…' : ''})`
      : f.msg instanceof ProtocolError ? `${f.msg.code}: ${f.msg.message}` : show(f.msg);
    lines.push(`  → ${what}${f.rewritten ? ` (${f.rewritten})` : ''}`);
  }
  for (const m of s.replies) {
    const end = (m.op === 'signaled' && m.seq === BARRIER_SEQ) || (m.op === 'pong' && m.seq === LAST_PING_SEQ);
    lines.push(`  ← ${end ? '(replay barrier) ' : ''}${show(m)}`);
  }
  lines.push(s.closed === undefined ? '  (open at the end; closed by the replay)' : `  closed ${s.closed.code}${s.closed.reason ? ` '${s.closed.reason}'` : ''}`);
  return lines;
}
