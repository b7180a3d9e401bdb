/**
 * Public surface of the PoD / VRF-lottery simulator: scenarios, the run loop, its summary,
 * sweeps and charts. The simulator drives the real src/pod (quorum, policy, ledger) and
 * src/vrf (lottery threshold, ECVRF) code; see docs/SIMULATION.md.
 */
export { Rng, hash32, hashUnit, mix32, seedToInt } from './rng.ts';
export { AliasTable, FenwickSampler } from './sampling.ts';
export { DEFAULT_SCENARIO, MAX_TRAINERS, resolveScenario, splitCheaters } from './scenario.ts';
export type { Scenario, ScenarioOverrides, Behaviour, BehaviourKind, HashrateDist, HardwareClass, PodScenario, LotteryScenario } from './scenario.ts';
export { buildPopulation, drawHashrate, isDishonest, KIND, KIND_NAMES } from './population.ts';
export type { Population } from './population.ts';
export { PodSimulator, newPodCounters, MAX_REOPENS } from './pod.ts';
export type { PodCounters, PodTrainerStats, PodEvent } from './pod.ts';
export { drawWinnersFast, lotteryLambda, EcvrfLottery, simVrfKey } from './lottery.ts';
export { runSimulation } from './engine.ts';
export type { SimRun, SlotRow, RunOptions, LotteryCounters, LotteryTrainerStats } from './engine.ts';
export { summarize, summaryJson, formatTable, trainerCsvRows, TRAINER_CSV_HEADER, slotCsvRow, SLOT_CSV_HEADER } from './report.ts';
export type { SimSummary, GroupShares } from './report.ts';
export { parseSweep, applySweepValue, runSweeps, sweepRow, SWEEP_PARAMS, SWEEP_CSV_COLUMNS } from './sweep.ts';
export type { SweepSpec, SweepRow, SweepParam } from './sweep.ts';
export { pearson, binnedChi2, chi2TwoSample, chi2Sf, gammaQ, lnGamma } from './stats.ts';
export type { Chi2Result } from './stats.ts';
