/** Ticks of the safety phase per seed unless `--ticks` says otherwise (100 s simulated). */
export const ticksDefault = 10_000
