import type { Drive } from "./loads.js";
import { cpuSeconds, loadGeneratorCpuSeconds, type Server } from "./processes.js";

// How a load is measured on a noisy machine: after a warm-up, every load of a
// phase runs once per round, one after the other, so that the two loads a
// ratio compares ran seconds apart; a figure is the median over the rounds.

/** The key of the load generators' CPU per request, beside the servers' names. */
export const LOAD_GENERATOR = "load generator";

export interface Load {
  readonly name: string;
  readonly drive: Drive;
  /** Our processes the load's requests cross, whose CPU per request is reported. */
  readonly crosses: readonly Server[];
  /** How long it runs in each round; the rounds' `seconds` when not set. */
  readonly seconds?: number;
  readonly note?: string;
}

/** One load's outcome: throughput, latency and the CPU each of our processes spent per request. */
export interface Sample {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU time (user + system, all threads) per request, by process name, and the load generator's. */
  readonly cpuUsPerRequest: Record<string, number>;
}

/** A row of the table: the median of a load's samples over the rounds. */
export interface Row extends Sample {
  readonly name: string;
  /** Lowest and highest requests/s over the rounds. */
  readonly rpsRange: [number, number];
  readonly note?: string;
}

export interface RoundOptions {
  readonly rounds: number;
  /** Each load's time per round, unless it sets its own. */
  readonly seconds: number;
  readonly warmUpSeconds: number;
}

/**
 * Runs the phases one after the other: in each, a warm-up of every load, then
 * the rounds. A load whose cost carries over into the next one (the servers
 * still working off what it left) belongs in a phase of its own.
 */
export async function measureRounds(
  phases: readonly (readonly Load[])[],
  options: RoundOptions,
): Promise<Measurements> {
  const samples = new Map<string, Sample[]>(phases.flat().map((l) => [l.name, []]));
  for (const phase of phases) {
    // JIT warm-up: every path once, unrecorded, so round 1 does not measure compilation.
    process.stderr.write(`warm-up: ${phase.length} loads of ${options.warmUpSeconds} s\n`);
    for (const { drive } of phase) await drive(options.warmUpSeconds);
    for (let round = 1; round <= options.rounds; round++) {
      for (const l of phase) samples.get(l.name)?.push(await measure(l, round, options));
    }
  }
  return new Measurements(samples);
}

async function measure({ name, drive, crosses, seconds }: Load, round: number, options: RoundOptions): Promise<Sample> {
  const cpuNow = () => Promise.all([...crosses.map((p) => cpuSeconds(p.pid)), loadGeneratorCpuSeconds()]);
  const before = await cpuNow();
  const result = await drive(seconds ?? options.seconds);
  const after = await cpuNow();
  const cpuUsPerRequest: Record<string, number> = {};
  [...crosses.map((p) => p.name), LOAD_GENERATOR].forEach((p, i) => {
    cpuUsPerRequest[p] = Math.round(
      (((after[i] as number) - (before[i] as number)) * 1e6) / Math.max(1, result.requests),
    );
  });
  process.stderr.write(
    `round ${round}/${options.rounds} ${name}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms\n`,
  );
  return { ...result, cpuUsPerRequest };
}

/** Every load's samples, one per round. */
export class Measurements {
  readonly #samples: Map<string, Sample[]>;

  constructor(samples: Map<string, Sample[]>) {
    this.#samples = samples;
  }

  /** The load's medians over the rounds. */
  row({ name, note, crosses }: Load): Row {
    const s = this.#samples.get(name) ?? [];
    const rps = s.map((x) => x.rps);
    const cpu: Record<string, number> = {};
    for (const p of [...crosses.map((c) => c.name), LOAD_GENERATOR]) {
      cpu[p] = median(s.map((x) => x.cpuUsPerRequest[p] as number));
    }
    return {
      name,
      rps: median(rps),
      rpsRange: [Math.min(...rps), Math.max(...rps)],
      p50Ms: median(s.map((x) => x.p50Ms)),
      p99Ms: median(s.map((x) => x.p99Ms)),
      cpuUsPerRequest: cpu,
      ...(note === undefined ? {} : { note }),
    };
  }

  /** A figure comparing two loads, taken within each round (the two seconds apart), then the median over rounds. */
  perRound(a: Load, b: Load, f: (x: Sample, y: Sample) => number): number {
    const ys = this.#samples.get(b.name) ?? [];
    return median((this.#samples.get(a.name) ?? []).map((x, i) => f(x, ys[i] as Sample)));
  }

  /** a's requests/s over b's. */
  rpsRatio(a: Load, b: Load): number {
    return this.perRound(a, b, (x, y) => x.rps / y.rps);
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
