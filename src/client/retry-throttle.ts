import { RETRY_DEFAULTS } from "../shared/retry-rules.js";

/**
 * gRFC A6 retry throttling, one per upstream: every failure with a retryable
 * code takes a token, every success gives back `tokenRatio`; while the bucket
 * is at or below half, no retries are made, so a dead upstream is not hammered.
 */
export class RetryThrottle {
  private tokens: number;

  constructor(
    private readonly maxTokens: number = RETRY_DEFAULTS.throttleMaxTokens,
    private readonly tokenRatio: number = RETRY_DEFAULTS.throttleTokenRatio,
  ) {
    this.tokens = maxTokens;
  }

  recordFailure(): void {
    this.tokens = Math.max(0, this.tokens - 1);
  }

  recordSuccess(): void {
    this.tokens = Math.min(this.maxTokens, this.tokens + this.tokenRatio);
  }

  allowsRetry(): boolean {
    return this.tokens > this.maxTokens / 2;
  }

  get level(): number {
    return this.tokens;
  }
}
