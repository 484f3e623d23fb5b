import { AsyncResource } from "node:async_hooks";

/**
 * Node 24's `AsyncResource#bind` gives every function it binds a deprecated
 * `asyncResource` getter and setter (DEP0172), which Node 25 no longer adds
 * (nodejs/node#58618). They are costly where nobody would look: Node's HTTP/2
 * client binds a callback for every request, each such function gets a hidden
 * class of its own, and V8 allocates hidden classes in old space. A dead one
 * still points, through its getter, at its request's stream, so every relayed
 * call's stream and all it references survive the scavenges until the next
 * full GC (the gateway promoted 2.9 KB per call with it, 1.6 KB without;
 * bench/README.md).
 *
 * This installs Node 25's `bind`, the same but without those accessors, where
 * `bind` still adds them; elsewhere it does nothing.
 */
export function backportAsyncResourceBind(): void {
  const probe = new AsyncResource("bazbii.probe").bind(() => {});
  if (!Object.hasOwn(probe, "asyncResource")) return;
  AsyncResource.prototype.bind = function bind<Func extends (...args: never[]) => unknown>(
    this: AsyncResource,
    fn: Func,
    thisArg?: unknown,
  ): Func {
    if (typeof fn !== "function") {
      throw new TypeError(`The "fn" argument must be of type function. Received ${typeof fn}`);
    }
    const resource = this;
    const target = fn as unknown as (...args: unknown[]) => unknown;
    const bound =
      thisArg === undefined
        ? function (this: unknown, ...args: unknown[]) {
            return resource.runInAsyncScope(target, this, ...args);
          }
        : (...args: unknown[]) => resource.runInAsyncScope(target, thisArg, ...args);
    Object.defineProperty(bound, "length", {
      configurable: true,
      enumerable: false,
      value: fn.length,
      writable: false,
    });
    return bound as unknown as Func;
  };
}
