// §4 sequence numbers, and §7.3's first checks: what a frame's seq does before anything else.
import { expectError, expectFatal, same, type Case } from '../case.js';

export const sequenceCases: Case[] = [
  {
    id: 'seq.first-zero',
    section: '4',
    title: 'the first seq may be 0',
    async run(t) {
      const c = await t.session();
      c.send({ op: 'ping', seq: 0 });
      same(await c.next(), { op: 'pong', seq: 0 }, 'reply to seq 0');
    },
  },
  {
    id: 'seq.gaps',
    section: '4',
    title: 'seqs may skip values; replies carry the command\'s seq',
    async run(t) {
      const c = await t.session();
      for (const seq of [5, 6, 1000, 2 ** 31]) {
        c.send({ op: 'fence', seq, fence: seq });
        same(await c.next(), { op: 'signaled', seq, fence: seq, ok: true }, `signal for seq ${seq}`);
      }
    },
  },
  {
    id: 'seq.repeat',
    section: '4',
    title: 'a repeated seq: bad_seq, close 1002',
    async run(t) {
      const c = await t.session();
      c.send({ op: 'ping', seq: 3 });
      await c.expect('pong', 3);
      c.send({ op: 'ping', seq: 3 });
      await expectFatal(c, 'bad_seq', 1002);
    },
  },
  {
    id: 'seq.decrease',
    section: '4',
    title: 'a smaller seq: bad_seq, close 1002',
    async run(t) {
      const c = await t.session();
      c.send({ op: 'ping', seq: 10 });
      await c.expect('pong', 10);
      c.send({ op: 'fence', seq: 9, fence: 1 });
      await expectFatal(c, 'bad_seq', 1002);
    },
  },
  {
    id: 'seq.unreadable',
    section: '4',
    title: 'a frame without a readable seq gets bad_message without seq and does not advance the sequence',
    async run(t) {
      const c = await t.session();
      c.send({ op: 'ping', seq: 4 });
      await c.expect('pong', 4);
      for (const seq of [undefined, -1, 'five', 2 ** 53, 1.5]) {
        c.send({ op: 'stats', seq });
        await expectError(c, 'bad_message', undefined);
      }
      c.send({ op: 'fence', seq: 5, fence: 1 });
      const s = await c.expect('signaled', 5);
      same([s.ok, s.errors, s.errSeq], [false, 5, undefined], 'fence after five unreadable seqs');
    },
  },
  {
    id: 'seq.unknown-op',
    section: '7.3',
    title: 'an unknown op with a readable seq: unknown_op with that seq',
    async run(t) {
      const c = await t.session();
      c.send({ op: 'teleport', seq: 1, bo: 1 });
      await expectError(c, 'unknown_op', 1);
      c.send({ op: 'welcome', seq: 2 }); // a device-to-driver op is not a command
      await expectError(c, 'unknown_op', 2);
    },
  },
  {
    id: 'seq.unknown-op-unreadable-seq',
    section: '7.3',
    title: 'an unknown op without a readable seq: bad_message without seq (the seq check comes first)',
    async run(t) {
      const c = await t.session();
      c.send({ op: 'teleport', bo: 1 });
      await expectError(c, 'bad_message', undefined);
    },
  },
  {
    id: 'seq.op-not-str',
    section: '7.3',
    title: 'an op that is not a str, with a readable seq: bad_message with that seq',
    async run(t) {
      const c = await t.session();
      c.send({ op: 7, seq: 1 });
      await expectError(c, 'bad_message', 1);
      c.send({ seq: 2 });
      await expectError(c, 'bad_message', 2);
    },
  },
];
