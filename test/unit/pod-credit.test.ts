import { describe, it, expect } from 'vitest';
import { signCreditRecord, verifyCreditRecord, creditRecordId, creditRecordProblem, CreditLedger, resultDigest, commitment, opensCommitment } from '../../src/pod/index.ts';
import { merkleRoot, merkleProof, verifyMerkleProof } from '../../src/util/merkle.ts';
import { creditLeaf } from '../../src/pod/credit.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { BYTES_PER_ELEMENT, DTYPES, typedView } from '../../src/util/tensor.ts';

const seed = new Uint8Array(32).fill(7);
const body = { job: 'job-1', unit: 3, resultDigest: 'ab'.repeat(32), flops: 1_000_000, credited: ['peerB', 'peerA'], faulty: ['cheat'], status: 'resolved' as const, time: 1_700_000_000_000 };

describe('credit records', () => {
  it('round-trips a signature and sorts worker lists', () => {
    const r = signCreditRecord(body, seed);
    expect(r.credited).toEqual(['peerA', 'peerB']);
    expect(verifyCreditRecord(r)).toBe(true);
    expect(creditRecordProblem(r)).toBeNull();
  });
  it('rejects any forged field', () => {
    const r = signCreditRecord(body, seed);
    expect(verifyCreditRecord({ ...r, flops: r.flops + 1 })).toBe(false);
    expect(verifyCreditRecord({ ...r, credited: ['peerA', 'peerC'] })).toBe(false);
    expect(verifyCreditRecord({ ...r, sig: '00'.repeat(64) })).toBe(false);
    expect(verifyCreditRecord({ ...r, coordinator: 'zz' })).toBe(false);
    expect(verifyCreditRecord(null)).toBe(false);
    expect(creditRecordProblem({ ...r, unit: -1 })).toMatch(/^unit:/);
  });
  it('ids differ per record and are stable', () => {
    const a = signCreditRecord(body, seed);
    const b = signCreditRecord({ ...body, unit: 4 }, seed);
    expect(creditRecordId(a)).toBe(creditRecordId({ ...a }));
    expect(creditRecordId(a)).not.toBe(creditRecordId(b));
  });
});

describe('CreditLedger', () => {
  it('apply then revert is the identity; windows sum buckets', () => {
    const l = new CreditLedger();
    l.apply({ credited: ['a', 'b'], faulty: ['c'], flops: 10 }, 1);
    l.apply({ credited: ['a'], faulty: [], flops: 5 }, 2);
    expect(l.weights()).toEqual(new Map([['a', 15n], ['b', 10n]]));
    expect(l.weights(2, 2)).toEqual(new Map([['a', 5n]]));
    expect(l.window().get('c')).toEqual({ credit: 0n, unitsAgreed: 0, unitsFaulty: 1, faults: 0 });
    l.revert({ credited: ['a'], faulty: [], flops: 5 }, 2);
    l.revert({ credited: ['a', 'b'], faulty: ['c'], flops: 10 }, 1);
    expect(l.window().size).toBe(0);
  });
});

describe('commit–reveal', () => {
  const out: Record<string, HostTensor> = { y: { dtype: 'float32', dims: [2], data: Float32Array.from([1, 2]) } };
  it('a reveal opens its own commitment only', () => {
    const salt = '11'.repeat(32);
    const c = commitment('w1', 'job/0', salt, resultDigest(out));
    expect(opensCommitment(c, 'w1', 'job/0', salt, out)).toBe(true);
    // another worker cannot reuse the commitment (identity is bound), nor a different result or salt
    expect(opensCommitment(c, 'w2', 'job/0', salt, out)).toBe(false);
    expect(opensCommitment(c, 'w1', 'job/0', '22'.repeat(32), out)).toBe(false);
    expect(opensCommitment(c, 'w1', 'job/0', salt, { y: { ...out.y!, data: Float32Array.from([1, 2.5]) } })).toBe(false);
    expect(opensCommitment('zz', 'w1', 'job/0', salt, out)).toBe(false);
  });
  it('the digest ignores key order but not names, dims or dtype', () => {
    const a = { p: out.y!, q: out.y! };
    const b = { q: out.y!, p: out.y! };
    expect(resultDigest(a)).toBe(resultDigest(b));
    expect(resultDigest({ y: { ...out.y!, dims: [1, 2] } })).not.toBe(resultDigest(out));
  });
  it('covers every dtype: the same bytes under another dtype, or one flipped bit, is another digest', () => {
    const bytes = Uint8Array.from([0, 60, 0, 64, 1, 2, 3, 4]); // as halves: 1.0, 2.0, ...
    const digests = new Set<string>();
    for (const dtype of DTYPES) {
      const bpe = BYTES_PER_ELEMENT[dtype];
      const t: HostTensor = { dtype, dims: [8 / bpe], data: typedView(dtype, bytes.slice()) };
      const flipped = bytes.slice();
      flipped[7] = flipped[7]! ^ 1;
      const d = resultDigest({ y: t });
      expect(resultDigest({ y: { ...t, data: typedView(dtype, flipped) } }), dtype).not.toBe(d);
      expect(resultDigest({ y: { ...t, data: typedView(dtype, bytes.slice()) } }), dtype).toBe(d);
      digests.add(d);
    }
    expect(digests.size).toBe(DTYPES.length); // uint8 and bool, int16/uint16/float16 share bytes, not digests
  });
});

describe('merkle', () => {
  it('proves every leaf of trees of many sizes and rejects tampering', () => {
    for (const n of [1, 2, 3, 5, 8, 13]) {
      const leaves = Array.from({ length: n }, (_, i) => creditLeaf(signCreditRecord({ ...body, unit: i }, seed)));
      const root = merkleRoot(leaves);
      for (let i = 0; i < n; i++) {
        const p = merkleProof(leaves, i);
        expect(verifyMerkleProof(root, leaves[i]!, p)).toBe(true);
        const other = leaves[(i + 1) % n]!;
        if (n > 1) expect(verifyMerkleProof(root, other, p)).toBe(false);
        if (n > 1) expect(verifyMerkleProof(root, leaves[i]!, { ...p, index: (i + 1) % n })).toBe(false);
        expect(verifyMerkleProof(root, leaves[i]!, { ...p, siblings: [...p.siblings, '00'.repeat(32)] })).toBe(false);
      }
    }
    expect(verifyMerkleProof('00', new Uint8Array(1), { index: 0, size: 1, siblings: [] })).toBe(false);
  });
});
