import { signAssertion, verifyAssertion } from "../src/shared/internal-assertion.js";

const SECRET = "bench-internal-secret-bench-secret-bench!";
const CALLS = 50_000;

/**
 * CPU microseconds one call's internal assertion costs: the gateway signing it
 * plus the API server verifying it, measured in this process (both are pure
 * computation: HMAC-SHA256 over a small JSON).
 */
export function assertionCpuUs(): number {
  const rpcMethod = "bazbii.post.v1.UserPostService/Get";
  const once = (i: number): void => {
    const requestId = `bench-${i}`;
    const token = signAssertion(SECRET, { actorId: "bench", rpcMethod, requestId });
    if ("problem" in verifyAssertion(SECRET, token, { rpcMethod, requestId })) {
      throw new Error("the bench's assertion did not verify");
    }
  };
  for (let i = 0; i < 5_000; i++) once(i); // warm up
  const before = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) once(i);
  const used = process.cpuUsage(before);
  return Math.round(((used.user + used.system) / CALLS) * 100) / 100;
}
