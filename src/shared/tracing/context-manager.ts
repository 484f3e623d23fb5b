import { context } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";

let installed = false;

/**
 * OpenTelemetry's async context, on Node's AsyncLocalStorage, for the whole
 * process (the API's context manager is global): code far from the request,
 * a storage query or a metric's exemplar, finds the call it works for. Node
 * 24 keeps the context in the async frame, so entering one costs about 10 ns
 * per call. Installed once, by the first server that starts.
 */
export function installContextManager(): void {
  if (installed) return;
  installed = true;
  // False when another one was registered first: that one carries the context then.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}
