import { AsyncLocalStorage, AsyncResource } from "node:async_hooks";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { backportAsyncResourceBind } from "./async-resource-bind.js";

describe("backportAsyncResourceBind", () => {
  beforeAll(() => backportAsyncResourceBind());

  it("binds without the deprecated asyncResource accessor, keeping the function's length", () => {
    const bound = new AsyncResource("test").bind((_a: number, _b: number) => 0);
    expect(Object.hasOwn(bound, "asyncResource")).toBe(false);
    expect(bound.length).toBe(2);
  });

  it("runs the function in the resource's async context, wherever it is called from", () => {
    const store = new AsyncLocalStorage<string>();
    const bound = store.run("at bind time", () => new AsyncResource("test").bind(() => store.getStore()));
    expect(store.run("at call time", bound)).toBe("at bind time");
    expect(AsyncResource.bind(() => store.getStore())()).toBeUndefined();
  });

  it("keeps the caller's this, or the one it was given", () => {
    const resource = new AsyncResource("test");
    const self = function (this: unknown) {
      return this;
    };
    const holder = { method: resource.bind(self) };
    expect(holder.method()).toBe(holder);
    const fixed = { name: "fixed" };
    // Node's bind takes a thisArg, which @types/node leaves out.
    const bindTo = resource.bind as unknown as (fn: typeof self, thisArg: unknown) => typeof self;
    expect(bindTo.call(resource, self, fixed).call(holder)).toBe(fixed);
  });

  it("refuses what is not a function", () => {
    expect(() => new AsyncResource("test").bind(42 as unknown as () => void)).toThrow(TypeError);
  });

  it("leaves Node's HTTP/2 client, which binds a callback per request, working", async () => {
    const server = http2.createServer((req, res) => {
      req.resume();
      req.on("end", () => res.end(`hello ${req.url}`));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const answers = await Promise.all(
        ["/a", "/b"].map(
          (path) =>
            new Promise<string>((resolve, reject) => {
              const stream = client.request({ ":method": "POST", ":path": path });
              let text = "";
              stream.setEncoding("utf8");
              stream.on("data", (chunk: string) => {
                text += chunk;
              });
              stream.on("end", () => resolve(text));
              stream.on("error", reject);
              stream.end("body");
            }),
        ),
      );
      expect(answers).toEqual(["hello /a", "hello /b"]);
    } finally {
      client.close();
      server.close();
    }
  });
});
