/**
 * The chain: blocks carrying PoD credit records, the hashrate-weighted VRF lottery that picks
 * their producers, validation with typed error codes, BABE-style fork choice with exact ledger
 * reorgs, the SQLite block store, and the ChainService that runs it all on a DrillNode.
 * See docs/CHAIN.md. The pure core (block, genesis, epoch, forkchoice, state, validate,
 * produce) has no I/O; store, topics, service and devnet are the shell.
 */
export * from './block.ts';
export * from './errors.ts';
export * from './genesis.ts';
export * from './devgenesis.ts';
export * from './epoch.ts';
export * from './forkchoice.ts';
export * from './state.ts';
export * from './validate.ts';
export * from './produce.ts';
export * from './store.ts';
export * from './topics.ts';
export * from './service.ts';
export * from './devnet.ts';
