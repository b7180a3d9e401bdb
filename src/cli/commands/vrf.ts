/**
 * `drill vrf keygen | prove | verify` — RFC 9381 ECVRF on edwards25519 from the command line.
 *
 *   drill vrf keygen [--seed HEX]                                → {"sk","pk"}
 *   drill vrf prove  --suite tai|ell2 --sk HEX --alpha HEX       → {"pk","pi","beta"}
 *   drill vrf verify --suite tai|ell2 --pk HEX --alpha HEX --pi HEX → {"valid","beta"}
 *
 * Output is one line of JSON with lowercase hex. Exit codes: 0 success / valid proof; 1 the
 * proof is not valid (including a pk or pi of the wrong length, which is just an invalid
 * proof); 2 malformed arguments (bad hex, a missing flag, an unknown suite or sub-command).
 */
import type { Command } from '../command.ts';
import type { FlagSpec } from '../args.ts';
import { helpText, parseArgs, str } from '../args.ts';
import { UserError } from '../../util/errors.ts';
import { bytesToHex } from '../../util/bytes.ts';
import type { Suite } from '../../vrf/index.ts';
import { VRF_SK_BYTES, vrfKeygen, vrfProofToHash, vrfProve, vrfPublicKey, vrfVerify } from '../../vrf/index.ts';

/** The suite used when --suite is not given: TAI, the suite the lottery examples use. */
const DEFAULT_SUITE: Suite = 'tai';

const SUITE_FLAG: FlagSpec = { type: 'string', help: 'ECVRF suite: tai (0x03) or ell2 (0x04)', default: DEFAULT_SUITE };
const HELP_FLAG: FlagSpec = { type: 'boolean', help: 'show this help' };

const SPECS = {
  keygen: { seed: { type: 'string', help: '32-byte secret seed in hex (random when omitted)' }, help: HELP_FLAG },
  prove: {
    suite: SUITE_FLAG,
    sk: { type: 'string', help: '32-byte secret key (RFC 8032 seed) in hex' },
    alpha: { type: 'string', help: 'VRF input in hex ("" for empty)' },
    help: HELP_FLAG,
  },
  verify: {
    suite: SUITE_FLAG,
    pk: { type: 'string', help: '32-byte public key in hex' },
    alpha: { type: 'string', help: 'VRF input in hex ("" for empty)' },
    pi: { type: 'string', help: '80-byte proof in hex' },
    help: HELP_FLAG,
  },
} satisfies Record<string, Record<string, FlagSpec>>;

type Sub = keyof typeof SPECS;

const USAGE: Record<Sub, string> = {
  keygen: 'usage: drill vrf keygen [--seed HEX]   prints {"sk","pk"}',
  prove: 'usage: drill vrf prove --suite tai|ell2 --sk HEX --alpha HEX   prints {"pk","pi","beta"}',
  verify: 'usage: drill vrf verify --suite tai|ell2 --pk HEX --alpha HEX --pi HEX   prints {"valid","beta"}; exit 0 valid, 1 not valid',
};

function overview(): string {
  return `usage: drill vrf <keygen|prove|verify> [flags]   (drill vrf <sub-command> --help)\n\n${Object.values(USAGE).map((u) => `  ${u.slice('usage: '.length)}`).join('\n')}\n\nexit codes: 0 ok / valid, 1 proof not valid, 2 malformed arguments\n`;
}

/** Hex flag → bytes; UserError names the flag. */
function hexFlag(value: string | undefined, flag: string, bytes?: number): Uint8Array {
  if (value === undefined) throw new UserError(`--${flag}`, bytes ? `${bytes} bytes of hex` : 'hex', undefined, 'the flag is required');
  const h = value.startsWith('0x') ? value.slice(2) : value;
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) throw new UserError(`--${flag}`, 'an even-length hex string', value);
  if (bytes !== undefined && h.length !== bytes * 2) throw new UserError(`--${flag}`, `${bytes} bytes (${bytes * 2} hex digits)`, `${h.length / 2} bytes`);
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

function suiteFlag(value: string | undefined): Suite {
  if (value === 'tai' || value === 'ell2') return value;
  throw new UserError('--suite', "'tai' or 'ell2'", value);
}

function print(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

export const command: Command = {
  name: 'vrf',
  summary: 'RFC 9381 ECVRF: keygen, prove, verify',
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      (sub === undefined ? process.stderr : process.stdout).write(overview());
      return sub === undefined ? 2 : 0;
    }
    if (!(sub in SPECS)) throw new UserError('sub-command', 'keygen, prove or verify', sub);
    const name = sub as Sub;
    const p = parseArgs(rest, SPECS[name]);
    if (p.flags.help === true) {
      process.stdout.write(helpText(USAGE[name], SPECS[name]));
      return 0;
    }
    if (p.positionals.length > 0) throw new UserError('arguments', 'flags only', p.positionals.join(' '));
    switch (name) {
      case 'keygen': {
        const seed = str(p, 'seed');
        const kp = vrfKeygen(seed === undefined ? undefined : hexFlag(seed, 'seed', VRF_SK_BYTES));
        print({ sk: bytesToHex(kp.sk), pk: bytesToHex(kp.pk) });
        return 0;
      }
      case 'prove': {
        const suite = suiteFlag(str(p, 'suite'));
        const sk = hexFlag(str(p, 'sk'), 'sk', VRF_SK_BYTES);
        const alpha = hexFlag(str(p, 'alpha'), 'alpha');
        const pi = vrfProve(suite, sk, alpha);
        print({ pk: bytesToHex(vrfPublicKey(sk)), pi: bytesToHex(pi), beta: bytesToHex(vrfProofToHash(suite, pi)) });
        return 0;
      }
      case 'verify': {
        const suite = suiteFlag(str(p, 'suite'));
        const pk = hexFlag(str(p, 'pk'), 'pk');
        const alpha = hexFlag(str(p, 'alpha'), 'alpha');
        const pi = hexFlag(str(p, 'pi'), 'pi');
        const r = vrfVerify(suite, pk, alpha, pi);
        print({ valid: r.valid, beta: r.beta === null ? null : bytesToHex(r.beta) });
        return r.valid ? 0 : 1;
      }
    }
  },
};
