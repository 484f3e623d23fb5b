/**
 * Envoy's retry budget: the gateway's extra attempts in flight at most
 * `percent` of the calls in flight (and at least `minRetries`, so that a quiet
 * gateway can still retry). When the whole fleet fails, retries cannot
 * multiply the load, and on top of the clients' own they cannot compound.
 *
 * A retry over the budget waits for a slot, within its call's deadline and at
 * most `maxWaitMs`, rather than failing at once: when one endpoint of three
 * dies, a third of the calls in flight fail in the same instant, more than a
 * 20% budget, and each retry takes milliseconds. Waiting spreads that burst
 * without raising the bound.
 */
export class RetryBudget {
  #calls = 0;
  #retries = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(
    private readonly percent: number,
    private readonly minRetries = 3,
    private readonly maxWaitMs = 1_000,
  ) {}

  callStarted(): void {
    this.#calls++;
  }

  callEnded(): void {
    this.#calls--;
  }

  /**
   * Takes a retry from the budget, waiting for one if need be; false when
   * none came in time (or the call ended). Give it back with retryEnded().
   */
  async acquire(signal: AbortSignal): Promise<boolean> {
    if (this.#hasRoom()) {
      this.#retries++;
      return true;
    }
    return new Promise((resolve) => {
      const done = (granted: boolean): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", give);
        const at = this.#waiting.indexOf(take);
        if (at >= 0) this.#waiting.splice(at, 1);
        resolve(granted);
      };
      // Handed a slot by retryEnded (the count stays taken for this retry).
      const take = (): void => done(true);
      const give = (): void => done(false);
      const timer = setTimeout(give, this.maxWaitMs);
      signal.addEventListener("abort", give, { once: true });
      this.#waiting.push(take);
    });
  }

  retryEnded(): void {
    // A waiting retry takes over the slot, if the budget still has it.
    if (this.#waiting.length > 0 && this.#hasRoom(1)) (this.#waiting.shift() as () => void)();
    else this.#retries--;
  }

  /** Whether one more retry fits; `freeing` slots are about to be given back. */
  #hasRoom(freeing = 0): boolean {
    return this.#retries - freeing < Math.max(this.minRetries, Math.floor((this.#calls * this.percent) / 100));
  }
}
