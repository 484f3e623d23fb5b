import { execFileSync } from "node:child_process";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { createFileRegistry, type DescMessage, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

// The official OTLP schemas (opentelemetry-proto v1.11.0, Apache-2.0, copied
// into test/helpers/opentelemetry-proto: @opentelemetry/otlp-transformer no
// longer ships them), compiled by buf and decoded with protobuf-es: nothing of
// the exporter's own code decodes what it sent.
const EXPORT_REQUEST = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest";
const exportRequest: DescMessage = (() => {
  const descriptors = execFileSync(
    "node_modules/.bin/buf",
    ["build", "test/helpers/opentelemetry-proto", "--exclude-source-info", "-o", "-#format=binpb"],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const message = createFileRegistry(fromBinary(FileDescriptorSetSchema, descriptors)).getMessage(EXPORT_REQUEST);
  if (message === undefined) throw new Error(`${EXPORT_REQUEST} not in the OTLP schemas`);
  return message;
})();

const KINDS = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"] as const;
const STATUSES = ["UNSET", "OK", "ERROR"] as const;

/** One span as a collector received it. */
export interface ReceivedSpan {
  /** service.name of the process that sent it. */
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  /** "" for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: (typeof KINDS)[number];
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly status: { readonly code: (typeof STATUSES)[number]; readonly message: string };
}

/** One export request: its headers and how many spans it carried. */
export interface ReceivedExport {
  readonly headers: http.IncomingHttpHeaders;
  readonly spans: number;
}

interface AnyValue {
  value: { case: string | undefined; value?: unknown };
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface OtlpSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId: Uint8Array;
  name: string;
  kind: number;
  attributes: KeyValue[];
  status?: { code: number; message: string };
}
interface OtlpRequest {
  resourceSpans: { resource?: { attributes: KeyValue[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

/**
 * A collector for tests: an OTLP/HTTP server (POST /v1/traces, protobuf) that
 * keeps every span it receives. It can hang (take requests and answer none
 * until `release`), as a collector that is overloaded does.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly exports: ReceivedExport[] = [];
  /** Export requests open at once at most (a hanging collector holds them). */
  maxOpen = 0;
  private open = 0;
  private held: (() => void)[] | undefined;

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  /** Listens on `port` (a free one by default). */
  static async start(port = 0): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver | undefined;
    const server = http.createServer((req, res) => receiver?.receive(req, res));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    receiver = new OtlpReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return receiver;
  }

  /** From now on, requests are read but not answered, until `release`. */
  hang(): void {
    this.held ??= [];
  }

  /** Answers the requests held, and every one after. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const answer of held) answer();
  }

  /** The spans of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private receive(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.maxOpen = Math.max(this.maxOpen, ++this.open);
    res.on("close", () => this.open--);
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (
        req.method !== "POST" ||
        req.url !== "/v1/traces" ||
        req.headers["content-type"] !== "application/x-protobuf"
      ) {
        res.writeHead(404).end();
        return;
      }
      const spans = decode(Buffer.concat(chunks));
      this.spans.push(...spans);
      this.exports.push({ headers: req.headers, spans: spans.length });
      // An empty ExportTraceServiceResponse: everything was accepted.
      const answer = () => res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      if (this.held === undefined) answer();
      else this.held.push(answer);
    });
  }
}

function decode(body: Buffer): ReceivedSpan[] {
  const request = fromBinary(exportRequest, body) as unknown as OtlpRequest;
  return request.resourceSpans.flatMap((resourceSpans) => {
    const resource = attributesOf(resourceSpans.resource?.attributes ?? []);
    return resourceSpans.scopeSpans.flatMap((scope) =>
      scope.spans.map(
        (span): ReceivedSpan => ({
          service: String(resource["service.name"]),
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          name: span.name,
          kind: KINDS[span.kind] ?? "UNSPECIFIED",
          attributes: attributesOf(span.attributes),
          status: { code: STATUSES[span.status?.code ?? 0] ?? "UNSET", message: span.status?.message ?? "" },
        }),
      ),
    );
  });
}

function attributesOf(keyValues: readonly KeyValue[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of keyValues) {
    const v = value?.value.value;
    if (typeof v === "bigint") out[key] = Number(v);
    else if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") out[key] = v;
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}
