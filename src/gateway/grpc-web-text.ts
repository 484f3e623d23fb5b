import type { OutgoingHttpHeaders } from "node:http";
import type { RequestListener } from "../shared/http/dual-protocol-server.js";

type Request = Parameters<RequestListener>[0];

/** What both Node response types offer that the translation wraps. */
interface TextResponse {
  writeHead(status: number, ...rest: unknown[]): unknown;
  write(chunk: unknown, ...rest: unknown[]): boolean;
  end(...args: unknown[]): unknown;
  getHeader(name: string): unknown;
  setHeader(name: string, value: string): unknown;
  removeHeader(name: string): void;
}

const TEXT = /^application\/grpc-web-text(?=$|[+;\s])/i;

/**
 * gRPC-Web's text mode (PROTOCOL-WEB.md): the same frames as binary gRPC-Web,
 * base64-encoded both ways, for browsers and proxies that cannot carry binary
 * bodies. connect-es does not speak it, so the gateway translates, as Envoy's
 * grpc_web filter does: the request's body is decoded as it arrives and the
 * call goes on as binary gRPC-Web (to the byte relay or connect-es alike); the
 * answer is encoded as it is written. Every other request passes untouched.
 */
export function withGrpcWebText(listener: RequestListener): RequestListener {
  return (req, res) => {
    const contentType = req.headers["content-type"];
    if (contentType === undefined || !TEXT.test(contentType)) {
      listener(req, res);
      return;
    }
    req.headers["content-type"] = contentType.replace(TEXT, "application/grpc-web");
    delete req.headers["content-length"]; // the decoded body is shorter
    decodeBody(req);
    encodeAnswer(res as unknown as TextResponse);
    listener(req, res);
  };
}

/**
 * Decodes the body chunk by chunk where Node hands it to the request stream.
 * A message may end in padding and the next begin after it, so the text is
 * decoded one padded run at a time (Node's decoder stops at the first '=').
 */
function decodeBody(req: Request): void {
  const push = req.push.bind(req);
  let carry = "";
  req.push = (chunk: unknown, encoding?: BufferEncoding) => {
    if (chunk === null) {
      const rest = carry;
      carry = "";
      if (rest !== "") push(decodeRuns(rest));
      return push(null);
    }
    const text = carry + (Buffer.isBuffer(chunk) ? chunk.toString("latin1") : String(chunk));
    const whole = text.length - (text.length % 4);
    carry = text.slice(whole);
    return whole === 0 ? true : push(decodeRuns(text.slice(0, whole)), encoding);
  };
}

function decodeRuns(text: string): Buffer {
  const runs = text.split(/(?<==)(?=[^=])/);
  return runs.length === 1 ? Buffer.from(text, "base64") : Buffer.concat(runs.map((r) => Buffer.from(r, "base64")));
}

/**
 * Encodes the answer as it is written, keeping back the bytes that do not fill
 * a 3-byte group so that padding comes only at the very end.
 */
function encodeAnswer(res: TextResponse): void {
  const writeHead = res.writeHead.bind(res);
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  let carry = Buffer.alloc(0);
  const encode = (chunk: unknown, last: boolean): string => {
    if (chunk === undefined || chunk === null || typeof chunk === "function") chunk = Buffer.alloc(0);
    const bytes = Buffer.concat([carry, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array)]);
    const whole = last ? bytes.length : bytes.length - (bytes.length % 3);
    carry = bytes.subarray(whole);
    return bytes.toString("base64", 0, whole);
  };
  res.writeHead = (status: number, ...rest: unknown[]) => {
    const headers = rest.find((r): r is OutgoingHttpHeaders => typeof r === "object" && r !== null);
    if (headers !== undefined) {
      delete headers["content-length"];
      if (typeof headers["content-type"] === "string") headers["content-type"] = textType(headers["content-type"]);
    }
    const set = res.getHeader("content-type");
    if (typeof set === "string") res.setHeader("content-type", textType(set));
    res.removeHeader("content-length");
    return writeHead(status, ...rest);
  };
  res.write = (chunk: unknown, ...rest: unknown[]) => write(encode(chunk, false), ...rest);
  res.end = (...args: unknown[]) => {
    const chunk = typeof args[0] === "function" ? undefined : args[0];
    const callback = args.find((a) => typeof a === "function");
    return end(encode(chunk, true), callback);
  };
}

function textType(contentType: string): string {
  return contentType.replace(/^application\/grpc-web(?!-text)/i, "application/grpc-web-text");
}
