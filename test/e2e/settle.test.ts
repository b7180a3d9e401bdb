/**
 * Settlement against a real Substrate runtime (solochain-template under chopsticks, in-process):
 * anchors land and read back through @polkadot/api (block body + system.Remarked), the store
 * records where; a settler restarted mid-run posts nothing twice; an anchor submitted by a
 * process that died before recording it is found on chain, not re-sent; `drill verify-credit`
 * proves a real trainer's credit and rejects a forged record; bad URL and an unfunded account
 * fail with clear errors.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiPromise } from '@polkadot/api';
import type { KeyringPair } from '@polkadot/keyring/types';
import { mnemonicGenerate } from '@polkadot/util-crypto';
import {
  ArraySource,
  buildAnchor,
  checkReceipt,
  receiptFromStore,
  connectSubstrate,
  decodeAnchor,
  disconnectQuietly,
  encodeAnchor,
  linkIdentity,
  verifyIdentityLink,
  loadSubstratePair,
  readRemarkAt,
  remarkHash,
  Settler,
  SettleErrorCode,
  SettleStore,
  submitRemark,
  nextNonce,
} from '../../src/settle/index.ts';
import type { AnchorRow, IdentityLink } from '../../src/settle/index.ts';
import { makeBlocks, makeTrainers, startChopsticks } from '../helpers/chopsticks.ts';
import type { ChopsticksChain, Trainer } from '../helpers/chopsticks.ts';

const ROOT = resolve(import.meta.dirname, '../..');

function drill(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/drill.js'), ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((res) => child.on('close', (code) => res({ code: code ?? -1, stdout, stderr })));
}

/** Resolve after `n` 'posted' events. */
function postedN(s: Settler, n: number): Promise<AnchorRow[]> {
  const rows: AnchorRow[] = [];
  return new Promise((res, rej) => {
    const onPosted = (r: AnchorRow): void => {
      rows.push(r);
      if (rows.length === n) {
        s.off('posted', onPosted);
        res(rows);
      }
    };
    s.on('posted', onPosted);
    s.once('fatal', rej);
  });
}

/** How many extrinsics on chain carry this remark (scanning every block). */
async function countOnChain(api: ApiPromise, remark: Uint8Array): Promise<number> {
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  const want = remarkHash(remark);
  let n = 0;
  for (let i = 1; i <= best; i++) {
    const hash = await api.rpc.chain.getBlockHash(i);
    const events = (await api.query.system.events.at(hash)) as unknown as Array<{ event: { section: string; method: string; data: Array<{ toHex(): string }> } }>;
    n += events.filter((e) => e.event.section === 'system' && e.event.method === 'Remarked' && e.event.data[1]!.toHex() === want).length;
  }
  return n;
}

describe('settle e2e (chopsticks solochain-template)', () => {
  let chain: ChopsticksChain;
  let api: ApiPromise;
  let alice: KeyringPair;
  let trainers: Trainer[];
  let dir: string;
  const source = new ArraySource();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'settle-e2e-'));
    chain = await startChopsticks();
    api = await connectSubstrate(chain.url, { timeoutMs: 15_000 });
    alice = await loadSubstratePair('//Alice');
    trainers = await makeTrainers(4);
  });

  afterAll(async () => {
    await disconnectQuietly(api);
    await chain?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('posts one anchor per finalised block, readable back through @polkadot/api, never twice across a restart', async () => {
    const store = new SettleStore(join(dir, 'settle.sqlite'));
    // The trainer 0 links its peer id to a Substrate account: the link rides in the first anchor that credits it.
    const bob = await loadSubstratePair('//Bob');
    const link = await linkIdentity(trainers[0]!.key, bob);
    store.putLink(link);
    source.push(...makeBlocks(1, 3, trainers));

    const s1 = new Settler({ url: chain.url, pollIntervalMs: 60_000 }, { store, source, signer: alice });
    const three = postedN(s1, 3);
    s1.start();
    const rows = await three;
    await s1.stop();

    expect(rows.map((r) => [r.fromHeight, r.toHeight])).toEqual([[1, 1], [2, 2], [3, 3]]);
    for (const r of rows) {
      expect(r.status).toBe('posted');
      expect(r.substrateBlock).toMatch(/^0x[0-9a-f]{64}$/);
      // Read back: block body at the recorded index holds the remark; system.Remarked carries its hash.
      const at = await readRemarkAt(api, r.substrateBlock!, r.extIndex!);
      expect(at).toBeDefined();
      expect(at!.success).toBe(true);
      expect(at!.eventMatches).toBe(true);
      expect(at!.signer).toBe(alice.address);
      const anchor = decodeAnchor(at!.remark);
      const block = source.blocks.find((b) => b.height === r.fromHeight)!;
      expect(anchor.blocks).toEqual([{ height: block.height, hash: block.hash, creditRoot: block.creditRoot, records: 3, creditedFlops: 3n * (1_000_000n + 2_000_000n + 3_000_000n) }]);
      expect(at!.blockNumber).toBe(r.substrateNumber);
    }
    // The link is carried exactly once.
    const carried = await Promise.all(rows.map(async (r) => decodeAnchor((await readRemarkAt(api, r.substrateBlock!, r.extIndex!))!.remark).links));
    expect(carried.flat()).toEqual([link]);

    // Restart mid-run: two more blocks finalise while the settler is down; a new settler on the
    // same store posts exactly those, and every anchor is on chain exactly once.
    source.push(...makeBlocks(4, 5, trainers));
    const s2 = new Settler({ url: chain.url, pollIntervalMs: 60_000 }, { store, source, signer: alice });
    const two = postedN(s2, 2);
    s2.start();
    expect((await two).map((r) => r.fromHeight)).toEqual([4, 5]);
    await s2.stop();
    const all = store.anchors();
    expect(all.map((a) => a.status)).toEqual(['posted', 'posted', 'posted', 'posted', 'posted']);
    for (const a of all) expect(await countOnChain(api, a.remark)).toBe(1);
    store.close();
  });

  it('after a crash between submit and record, finds the anchor on chain instead of re-sending it', async () => {
    const store = new SettleStore(join(dir, 'crash.sqlite'));
    const src = new ArraySource();
    const [b] = makeBlocks(100, 100, trainers);
    src.push(b!);
    // What the dead process did: queued the anchor, marked it submitted, sent it; then died.
    store.putBlock(b!);
    const remark = encodeAnchor(buildAnchor('matrix-drill', [b!]));
    const row = store.createAnchor([100], remark, remarkHash(remark), [])!;
    const head = (await api.rpc.chain.getHeader()).number.toNumber();
    const nonce = await nextNonce(api, alice.address);
    store.markSubmitted(row.id, nonce, head);
    const sent = await submitRemark(api, alice, remark, { nonce, waitFor: 'inBlock', timeoutMs: 30_000, url: chain.url });

    const s = new Settler({ url: chain.url, pollIntervalMs: 60_000 }, { store, source: src, signer: alice });
    const one = postedN(s, 1);
    s.start();
    const [posted] = await one;
    await s.stop();
    expect(posted!.substrateBlock).toBe(sent.blockHash);
    expect(posted!.extIndex).toBe(sent.extIndex);
    expect(await countOnChain(api, remark)).toBe(1);
    store.close();
  });

  it('drill verify-credit proves a real credit record against the chain and rejects a forged one', async () => {
    const dataDir = join(dir, 'cli');
    const blocksFile = join(dir, 'blocks.jsonl');
    const blocks = makeBlocks(1, 2, trainers);
    writeFileSync(blocksFile, blocks.map((b) => JSON.stringify(b)).join('\n') + '\n');
    // The trainer shows its link the way a worker would: from its identity.key and a Substrate key.
    const workerDir = join(dir, 'worker');
    mkdirSync(workerDir);
    writeFileSync(join(workerDir, 'identity.key'), privateKeyToProtobuf(trainers[1]!.key));
    const shown = await drill(['settle', '--show-identity', '--identity', workerDir, '--suri', '//Carol']);
    expect(shown.code, shown.stderr).toBe(0);
    const link = JSON.parse(shown.stdout) as IdentityLink;
    expect(link).toMatchObject({ peer: trainers[1]!.peer, ss58: (await loadSubstratePair('//Carol')).address });
    expect(await verifyIdentityLink(link)).toBe(true);
    const linkFile = join(dir, 'link.json');
    writeFileSync(linkFile, shown.stdout);

    const settle = await drill(['settle', '--ws', chain.url, '--suri', '//Alice', '--data-dir', dataDir, '--blocks', blocksFile, '--link', linkFile, '--once', '--log-level', 'warn']);
    expect(settle.stderr).not.toMatch(/ERROR|internal error/);
    expect(settle.code).toBe(0);
    // A line per anchor as it lands, then the summary.
    const lines = settle.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const l of lines.slice(0, 2)) expect(l).toMatch(/^anchor \d+: matrix-drill blocks #\d+\.\.#\d+ \(\d+\) → substrate block #\d+ 0x[0-9a-f]{64}, extrinsic \d+$/);
    expect(lines[2]).toBe(`settled: 2 anchor(s) posted this run by ${alice.address}; 2 in the queue, 0 pending; last: blocks ${lines[1]!.match(/blocks (#\d+\.\.#\d+)/)![1]} in substrate block ${lines[1]!.match(/(0x[0-9a-f]{64})/)![1]}`);

    // By SS58 address (through the anchored identity link).
    const ok = await drill(['verify-credit', '--ws', chain.url, '--worker', link.ss58, '--block', '2', '--data-dir', dataDir]);
    expect(ok.code).toBe(0);
    const out = JSON.parse(ok.stdout);
    expect(out.anchored).toBe(true);
    expect(out.substrateBlock).toMatch(/^0x[0-9a-f]{64}$/);
    expect(out.root).toBe(blocks[1]!.creditRoot);
    expect(out.credit.worker).toBe(trainers[1]!.peer);
    expect(out.credit.ss58).toBe(link.ss58);
    const expected = blocks[1]!.records.filter((r) => r.credited.includes(trainers[1]!.peer));
    expect(out.credit.records.map((r: { record: unknown }) => r.record)).toEqual(expected);
    expect(out.credit.flops).toBe(String(expected.reduce((t, r) => t + r.flops, 0)));

    // The saved output re-checks against the chain alone (no store).
    expect(await checkReceipt(api, out.credit)).toEqual(out);
    // Claiming the credit for another SS58 address: without a matching link, or with a link whose signatures fail.
    expect(await checkReceipt(api, { ...out.credit, ss58: alice.address })).toMatchObject({ anchored: false, reason: expect.stringMatching(/without a matching identity link/) });
    expect(await checkReceipt(api, { ...out.credit, ss58: alice.address, link: { ...out.credit.link, ss58: alice.address } })).toMatchObject({ anchored: false, reason: expect.stringMatching(/identity link does not verify/) });

    // Forged: more FLOPs than the coordinator signed.
    const forged = structuredClone(out);
    forged.credit.records[0].record.flops *= 10;
    forged.credit.flops = undefined;
    writeFileSync(join(dir, 'forged.json'), JSON.stringify(forged));
    const bad = await drill(['verify-credit', '--ws', chain.url, '--receipt', join(dir, 'forged.json')]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ anchored: false });
    expect(JSON.parse(bad.stdout).reason).toMatch(/forged or altered/);

    // Forged: a record credited to another worker, re-signed by a different "coordinator" key
    // (valid signature, but not the record the anchored root commits to).
    const { makeRecord } = await import('../helpers/chopsticks.ts');
    const fake = makeRecord('job-x', 0, 5_000_000, [trainers[3]!.peer]);
    const forged2 = structuredClone(out);
    forged2.credit.worker = trainers[3]!.peer;
    forged2.credit.link = undefined;
    forged2.credit.records = [{ ...forged2.credit.records[0], record: fake, id: (await import('../../src/pod/credit.ts')).creditRecordId(fake) }];
    forged2.credit.flops = undefined;
    const bad2 = await checkReceipt(api, forged2.credit);
    expect(bad2.anchored).toBe(false);
    expect((bad2 as { reason: string }).reason).toMatch(/Merkle proof does not reach/);

    // A block the store holds no anchor for.
    const store = new SettleStore(join(dataDir, 'settle.sqlite'));
    expect(receiptFromStore(store, trainers[1]!.peer, 9)).toMatch(/not in the settle store/);
    store.close();
  });

  it('bad URL → cannot reach; unfunded account → cannot pay fees (fatal, anchor kept queued)', async () => {
    await expect(connectSubstrate('ws://127.0.0.1:1', { timeoutMs: 10_000 })).rejects.toMatchObject({ code: SettleErrorCode.UNREACHABLE, message: expect.stringMatching(/cannot reach Substrate node at ws:\/\/127\.0\.0\.1:1/) });
    const blocksFile = join(dir, 'blocks-err.jsonl');
    writeFileSync(blocksFile, makeBlocks(1, 1, trainers).map((b) => JSON.stringify(b)).join('\n') + '\n');
    const cli = await drill(['settle', '--ws', 'ws://127.0.0.1:1', '--suri', '//Alice', '--blocks', blocksFile, '--data-dir', join(dir, 'err1'), '--once']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/drill settle: cannot reach Substrate node at ws:\/\/127\.0\.0\.1:1.*\[SETTLE_UNREACHABLE\]/);
    const badScheme = await drill(['settle', '--ws', 'http//nope', '--suri', '//Alice', '--blocks', 'x', '--data-dir', join(dir, 'x')]);
    expect(badScheme.code).toBe(2);
    expect(badScheme.stderr).toMatch(/--ws: expected a ws:\/\/ or wss:\/\/ URL/);

    // Unfunded: a fresh mnemonic (from a key file) with no balance on the chain.
    const keyFile = join(dir, 'poor.key');
    writeFileSync(keyFile, mnemonicGenerate() + '\n');
    const poor = await loadSubstratePair(keyFile);
    const errDir = join(dir, 'err2');
    const unfunded = await drill(['settle', '--ws', chain.url, '--suri', keyFile, '--blocks', blocksFile, '--data-dir', errDir, '--once']);
    expect(unfunded.code).toBe(1);
    expect(unfunded.stderr).toContain(`drill settle: account ${poor.address} cannot pay the transaction fee on ${chain.url}`);
    expect(unfunded.stderr).toMatch(/\[SETTLE_INSUFFICIENT_FUNDS\]/);
    const store = new SettleStore(join(errDir, 'settle.sqlite'));
    expect(store.unsettled().map((a) => a.fromHeight)).toEqual([1]); // kept queued for a funded retry
    store.close();
  });
});
