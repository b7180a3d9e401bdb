/**
 * Settlement on Substrate: anchors of finalised matrix-drill blocks (credit roots and totals,
 * plus trainer identity links) posted as `system.remarkWithEvent`, and credit proofs against them.
 */
export * from './anchor.ts';
export * from './backoff.ts';
export * from './errors.ts';
export * from './identity.ts';
export * from './settler.ts';
export * from './source.ts';
export * from './store.ts';
export * from './substrate.ts';
export * from './verify.ts';
export * from './chain-source.ts';
