/**
 * Public surface of the vrf module: the hashrate-weighted lottery (pure bigint math) and,
 * in ecvrf.ts, RFC 9381 ECVRF on edwards25519 (suites TAI 0x03 and ELL2 0x04).
 */
export * from './lottery.ts';
export { VrfErrorCode } from './errors.ts';
