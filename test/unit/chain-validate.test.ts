import { describe, it, expect } from 'vitest';
import { ChainState } from '../../src/chain/state.ts';
import { validateBlock } from '../../src/chain/validate.ts';
import { BlockErrorCode, BLOCK_ERROR_VERDICTS } from '../../src/chain/errors.ts';
import { creditRootOf, blockHash, faultRootOf } from '../../src/chain/block.ts';
import { makeEquivocation } from '../../src/chain/faults.ts';
import type { Block } from '../../src/chain/block.ts';
import { slotTicket } from '../../src/chain/produce.ts';
import { bytesToHex } from '../../src/util/bytes.ts';
import { verdictFor, registerVerdicts } from '../../src/net/topics.ts';
import { KEYS, OUTSIDER, OTHER_COORD_SEED, testGenesis, credit, fault, makeBlock, resign, at } from './chain-fixture.ts';

const [A, B] = KEYS as [(typeof KEYS)[0], (typeof KEYS)[0]];

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

function fresh(over = {}) {
  return new ChainState(testGenesis(over));
}

describe('validateBlock', () => {
  it('accepts a valid block with credit records, and it becomes the head', () => {
    const s = fresh();
    const b = makeBlock(s, A, 1, undefined, [credit([B.peerId])]);
    const v = validateBlock(s, b, at(1));
    expect(v.hash).toBe(blockHash(b.header));
    expect(v.weight).toBe(1000n);
    expect(v.total).toBe(6000n);
    const r = s.add(v.block, v.hash);
    expect(r.headChanged).toBe(true);
    expect(s.head.height).toBe(1);
  });

  const cases: Array<[string, (s: ChainState) => { block: Block; now?: number }]> = [
    [BlockErrorCode.MALFORMED, (s) => {
      const b = makeBlock(s, A, 1);
      return { block: { ...b, header: { ...b.header, vrfProof: b.header.vrfProof.slice(2) } } };
    }],
    [BlockErrorCode.WRONG_CHAIN, (s) => ({ block: resign(makeBlock(s, A, 1), A, { chainId: 'other-net' }) })],
    [BlockErrorCode.ALREADY_KNOWN, (s) => {
      const b = makeBlock(s, A, 1);
      s.add(b);
      return { block: b };
    }],
    [BlockErrorCode.FUTURE_SLOT, (s) => ({ block: makeBlock(s, A, 5), now: at(4) })],
    [BlockErrorCode.TOO_MANY_CREDITS, (s) => ({ block: makeBlock(s, A, 1, undefined, [credit([A.peerId]), credit([A.peerId]), credit([A.peerId])]) })],
    [BlockErrorCode.PARENT_UNKNOWN, (s) => ({ block: resign(makeBlock(s, A, 1), A, { parent: 'ab'.repeat(32) }) })],
    [BlockErrorCode.SLOT_NOT_AFTER_PARENT, (s) => {
      const p = makeBlock(s, A, 3);
      s.add(p);
      return { block: makeBlock(s, B, 3, blockHash(p.header)) };
    }],
    [BlockErrorCode.BAD_HEIGHT, (s) => ({ block: resign(makeBlock(s, A, 1), A, { height: 2 }) })],
    [BlockErrorCode.BAD_PRODUCER, (s) => ({ block: resign(makeBlock(s, A, 1), A, { producer: 'QmNotAnEd25519PeerId' }) })],
    [BlockErrorCode.CREDIT_ROOT_MISMATCH, (s) => {
      const b = makeBlock(s, A, 1, undefined, [credit([A.peerId])]);
      return { block: resign(b, A, { creditRoot: creditRootOf([]) }) };
    }],
    [BlockErrorCode.BAD_SIGNATURE, (s) => {
      const b = makeBlock(s, A, 1);
      return { block: { ...b, sig: (b.sig[0] === '0' ? '1' : '0') + b.sig.slice(1) } };
    }],
    [BlockErrorCode.BAD_VRF_PROOF, (s) => {
      const b = makeBlock(s, A, 1);
      const other = slotTicket(s, A, 2); // a valid proof, but for another slot
      return { block: resign(b, A, { vrfProof: bytesToHex(other.proof), vrfOutput: bytesToHex(other.output) }) };
    }],
    [BlockErrorCode.VRF_ABOVE_THRESHOLD, (s) => ({ block: makeBlock(s, OUTSIDER, 1) })], // weight 0 never wins
    [BlockErrorCode.BAD_CREDIT_RECORD, (s) => {
      const bad = { ...credit([A.peerId]), flops: 10 ** 12 }; // inflated after signing
      return { block: makeBlock(s, A, 1, undefined, [bad]) };
    }],
    [BlockErrorCode.UNKNOWN_COORDINATOR, (s) => ({ block: makeBlock(s, A, 1, undefined, [credit([A.peerId], 100, OTHER_COORD_SEED)]) })],
    [BlockErrorCode.DUPLICATE_CREDIT, (s) => {
      const r = credit([A.peerId]);
      return { block: makeBlock(s, A, 1, undefined, [r, r]) };
    }],
    [BlockErrorCode.CREDIT_REPLAYED, (s) => {
      const r = credit([A.peerId]);
      const p = makeBlock(s, A, 1, undefined, [r]);
      s.add(p);
      return { block: makeBlock(s, B, 2, blockHash(p.header), [r]) };
    }],
    [BlockErrorCode.TOO_MANY_FAULTS, (s) => ({ block: makeBlock(s, A, 1, undefined, [], [fault(A.peerId, 'j1'), fault(A.peerId, 'j2'), fault(A.peerId, 'j3')]) })],
    [BlockErrorCode.FAULT_ROOT_MISMATCH, (s) => {
      const b = makeBlock(s, A, 1, undefined, [], [fault(B.peerId)]);
      return { block: resign(b, A, { faultRoot: faultRootOf([]) }) };
    }],
    [BlockErrorCode.BAD_FAULT, (s) => {
      // A fault record by a coordinator the genesis does not list.
      return { block: makeBlock(s, A, 1, undefined, [], [fault(B.peerId, 'job-test', ['minority:0'], OTHER_COORD_SEED)]) };
    }],
    [BlockErrorCode.DUPLICATE_FAULT, (s) => {
      const f = fault(B.peerId);
      return { block: makeBlock(s, A, 1, undefined, [], [f, f]) };
    }],
    [BlockErrorCode.FAULT_REPLAYED, (s) => {
      const f = fault(B.peerId);
      const p = makeBlock(s, A, 1, undefined, [], [f]);
      s.add(p);
      return { block: makeBlock(s, B, 2, blockHash(p.header), [], [f]) };
    }],
  ];

  for (const [code, build] of cases) {
    it(`rejects with ${code}`, () => {
      const s = fresh({ maxCreditsPerBlock: 2 });
      const { block, now } = build(s);
      expect(codeOf(() => validateBlock(s, block, now ?? at(10)))).toBe(code);
    });
  }

  it('has a test case and a verdict for every error code', () => {
    const codes = Object.values(BlockErrorCode);
    // EQUIVOCATION depends on what a node saw first, so ChainService checks it (chain-service.test.ts).
    expect(new Set(cases.map((c) => c[0]))).toEqual(new Set(codes.filter((c) => c !== BlockErrorCode.EQUIVOCATION)));
    for (const c of codes) expect(['ignore', 'reject']).toContain(BLOCK_ERROR_VERDICTS[c]);
  });

  it('maps error codes to gossip verdicts through the net layer table', () => {
    registerVerdicts(BLOCK_ERROR_VERDICTS);
    const s = fresh();
    const verdict = (b: Block, now = at(10)): string => {
      try {
        validateBlock(s, b, now);
        return 'accept';
      } catch (e) {
        return verdictFor(e);
      }
    };
    const good = makeBlock(s, A, 1);
    expect(verdict(good)).toBe('accept');
    expect(verdict(makeBlock(s, A, 20), at(5))).toBe('ignore'); // future slot
    expect(verdict(resign(good, A, { parent: 'cd'.repeat(32) }))).toBe('ignore'); // unknown parent
    expect(verdict({ ...good, sig: 'ff'.repeat(64) })).toBe('reject'); // bad signature
  });

  it('vrfOutput that is not the proof output is BAD_VRF_PROOF', () => {
    const s = fresh();
    const b = makeBlock(s, A, 1);
    const out = (b.header.vrfOutput[0] === '0' ? '1' : '0') + b.header.vrfOutput.slice(1);
    expect(codeOf(() => validateBlock(s, resign(b, A, { vrfOutput: out }), at(1)))).toBe(BlockErrorCode.BAD_VRF_PROOF);
  });

  it('allows a record on a competing branch that its own branch has not included', () => {
    const s = fresh();
    const r = credit([A.peerId]);
    const a1 = makeBlock(s, A, 1, undefined, [r]);
    s.add(a1);
    // B forks from genesis at slot 2 and includes the same record: not a replay on its branch.
    const b1 = makeBlock(s, B, 2, s.genesisHash, [r]);
    expect(validateBlock(s, b1, at(2)).hash).toBe(blockHash(b1.header));
  });

  it('equivocation evidence is valid only for two different headers of one producer and slot, each signed by it', () => {
    const s = fresh();
    const b1 = makeBlock(s, A, 1);
    const b2 = makeBlock(s, A, 1, undefined, [credit([A.peerId])]); // same slot, other contents
    const ev = makeEquivocation(b1, b2);
    expect(validateBlock(s, makeBlock(s, B, 2, undefined, [], [ev]), at(2)).block.faults).toHaveLength(1);
    const forged = { ...ev, b: { ...ev.b, sig: ev.a.sig } }; // B's header with A's signature of another header
    expect(codeOf(() => validateBlock(s, makeBlock(s, B, 2, undefined, [], [forged]), at(2)))).toBe(BlockErrorCode.BAD_FAULT);
    expect(() => makeEquivocation(b1, b1)).toThrow(RangeError);
    expect(() => makeEquivocation(b1, makeBlock(s, A, 2))).toThrow(RangeError);
  });

  it('a block of slot s passes when now is in slot s minus the drift allowance', () => {
    const s = fresh({ maxClockDriftMs: 300 });
    const b = makeBlock(s, A, 5);
    expect(validateBlock(s, b, 5000 - 300).hash).toBe(blockHash(b.header));
    expect(codeOf(() => validateBlock(s, b, 5000 - 301))).toBe(BlockErrorCode.FUTURE_SLOT);
  });
});
