import { Code } from "@connectrpc/connect";
import type { ErrorSpec } from "./error-spec.js";

type SpecBody = Omit<ErrorSpec, "reason">;

/** Gives each entry its key as its reason, so a reason is written once. */
function defineCatalog<const T extends Record<string, SpecBody>>(
  bodies: T,
): { readonly [K in keyof T & string]: ErrorSpec & { readonly reason: K } } {
  return Object.fromEntries(Object.entries(bodies).map(([reason, body]) => [reason, { reason, ...body }])) as never;
}

const POST_TYPE = "bazbii.post.v1.Post";

/**
 * Every public error, by reason: the single source of what callers see and of
 * docs/errors.md. The application maps domain reasons onto these entries; the
 * gateway raises its own entries directly. Reasons are never renamed or reused.
 */
export const errorCatalog = defineCatalog({
  // ── Request validation (raised by the domain; the gateway pre-checks h3_res) ──
  H3_RES_OUT_OF_RANGE: {
    code: Code.InvalidArgument,
    message: {
      en: "h3_res must be between 0 and 15",
      ja: "h3_res は 0 から 15 の範囲で指定してください",
    },
    badRequest: { field: "h3_res" },
    log: { api: "REQ_003", gateway: "REQ_002" },
  },
  INVALID_AREA_CELL: {
    code: Code.InvalidArgument,
    message: {
      en: "within must be a valid H3 cell index, or empty for everywhere",
      ja: "within には有効な H3 セルを指定するか、全域なら空にしてください",
    },
    badRequest: { field: "within" },
    log: { api: "REQ_003" },
  },
  INVALID_H3_INDEX: {
    code: Code.InvalidArgument,
    message: { en: "invalid H3 index", ja: "H3 インデックスが無効です" },
    badRequest: { field: "h3_index" },
    log: { api: "REQ_003" },
  },
  TEXT_EMPTY: {
    code: Code.InvalidArgument,
    message: { en: "text must not be empty", ja: "本文を入力してください" },
    badRequest: { field: "text" },
    log: { api: "REQ_003" },
  },
  TEXT_TOO_LONG: {
    code: Code.InvalidArgument,
    message: {
      en: "text must be at most {maxLength} characters; it has {length}",
      ja: "本文は {maxLength} 文字以内にしてください（現在 {length} 文字）",
    },
    badRequest: { field: "text" },
    log: { api: "REQ_003" },
  },
  TEXT_HAS_CONTROL_CHARACTERS: {
    code: Code.InvalidArgument,
    message: {
      en: "text must not contain control characters other than tab and line breaks",
      ja: "本文にはタブと改行以外の制御文字を使えません",
    },
    badRequest: { field: "text" },
    log: { api: "REQ_003" },
  },
  TEXT_NOT_UNICODE: {
    code: Code.InvalidArgument,
    message: {
      en: "text must be valid Unicode: it has an unpaired surrogate",
      ja: "本文が正しい Unicode ではありません（対になっていないサロゲートがあります）",
    },
    badRequest: { field: "text" },
    log: { api: "REQ_003" },
  },
  INVALID_REQUEST_ID: {
    code: Code.InvalidArgument,
    message: {
      en: "request_id must be 1 to {maxLength} printable ASCII characters without spaces; a UUID is recommended",
      ja: "request_id は空白を含まない 1〜{maxLength} 文字の ASCII で指定してください（UUID を推奨）",
    },
    badRequest: { field: "request_id" },
    log: { api: "REQ_003" },
  },
  POST_ID_MISSING: {
    code: Code.InvalidArgument,
    message: { en: "id is required", ja: "id を指定してください" },
    badRequest: { field: "id" },
    log: { api: "REQ_003" },
  },
  POST_ID_INVALID: {
    code: Code.InvalidArgument,
    message: {
      en: "id must not contain control characters or unpaired surrogates",
      ja: "id に制御文字や対になっていないサロゲートは使えません",
    },
    badRequest: { field: "id" },
    log: { api: "REQ_003" },
  },

  // ── Posts ──
  POST_NOT_FOUND: {
    code: Code.NotFound,
    message: { en: "post not found: {postId}", ja: "投稿が見つかりません: {postId}" },
    resourceInfo: { type: POST_TYPE, name: "{postId}" },
    log: { api: "REQ_003" },
  },
  NOT_POST_AUTHOR: {
    code: Code.PermissionDenied,
    message: {
      en: "only the author of post {postId} can delete it",
      ja: "投稿 {postId} を削除できるのは投稿者だけです",
    },
    log: { api: "REQ_003" },
  },
  POST_ALREADY_DELETED: {
    code: Code.FailedPrecondition,
    message: { en: "post {postId} was already deleted", ja: "投稿 {postId} はすでに削除されています" },
    preconditionFailure: { type: "STATE", subject: "posts/{postId}" },
    log: { api: "REQ_003" },
    // Delete is IDEMPOTENT: its author deleting a deleted post succeeds.
    retired: true,
  },
  REQUEST_ID_REUSED: {
    code: Code.FailedPrecondition,
    message: {
      en: "request_id {requestId} was already used for a different post; send a new request_id for a new post",
      ja: "request_id {requestId} は別の投稿ですでに使われています。新しい投稿には新しい request_id を指定してください",
    },
    preconditionFailure: { type: "REQUEST_ID", subject: "request_id/{requestId}" },
    log: { api: "REQ_003" },
  },

  // ── Identity ──
  // The seed's status message, also for a call without a token at the gateway: the
  // caller gets the same error whether the gateway or the API server noticed.
  ACTOR_MISSING: {
    code: Code.Unauthenticated,
    statusMessage: "actor_id not found in context",
    message: {
      en: "you are not signed in: sign in and send Authorization: Bearer <token>",
      ja: "サインインしていません。サインインして Authorization: Bearer <token> を送ってください",
    },
    log: { api: "REQ_001", gateway: "REQ_002" },
  },
  INTERNAL_CALL_UNAUTHENTICATED: {
    code: Code.Unauthenticated,
    message: {
      en: "the API server takes calls only through a gateway, which vouches for each one; this call carries no valid assertion ({problem})",
      ja: "API サーバーはゲートウェイ経由の呼び出しだけを受け付けます。この呼び出しには有効なアサーションがありません（{problem}）",
    },
    log: { api: "REQ_004" },
  },
  INVALID_ACTOR_ID: {
    code: Code.Unauthenticated,
    message: {
      en: "actor_id must be 1 to {maxLength} printable ASCII characters without spaces; sign in again",
      ja: "actor_id は空白を含まない 1〜{maxLength} 文字の ASCII でなければなりません。もう一度サインインしてください",
    },
    log: { api: "REQ_003" },
  },
  TOKEN_MALFORMED: {
    code: Code.Unauthenticated,
    message: {
      en: "the Authorization header must be 'Bearer <token>' with a JSON Web Token",
      ja: "Authorization ヘッダーは 'Bearer <token>'（JSON Web Token）の形式にしてください",
    },
    log: { gateway: "REQ_002" },
  },
  TOKEN_INVALID: {
    code: Code.Unauthenticated,
    message: {
      en: "the token is not valid ({problem}); sign in again to get a new one",
      ja: "トークンが無効です（{problem}）。もう一度サインインしてください",
    },
    log: { gateway: "REQ_002" },
  },
  TOKEN_EXPIRED: {
    code: Code.Unauthenticated,
    message: {
      en: "the token expired at {expiredAt}; sign in again to get a new one",
      ja: "トークンの有効期限（{expiredAt}）が切れています。もう一度サインインしてください",
    },
    log: { gateway: "REQ_002" },
  },
  TOKEN_NOT_YET_VALID: {
    code: Code.Unauthenticated,
    message: {
      en: "the token is not valid before {notBefore}; check the clock of the issuer",
      ja: "トークンは {notBefore} まで有効になりません。発行元の時計を確認してください",
    },
    log: { gateway: "REQ_002" },
  },

  // ── Storage ──
  STORAGE_UNAVAILABLE: {
    code: Code.Unavailable,
    message: {
      en: "the post store is temporarily unavailable; retry in a moment",
      ja: "投稿ストアが一時的に利用できません。しばらくしてから再試行してください",
    },
    retryDelayMs: 1000,
    log: { api: "REQ_003" },
  },
  STORAGE_CONFLICT: {
    code: Code.Aborted,
    message: {
      en: "the request conflicted with a concurrent change; retry it",
      ja: "同時に行われた別の変更と競合しました。再試行してください",
    },
    log: { api: "REQ_003" },
  },

  // ── The gateway's upstream call ──
  UPSTREAM_UNREACHABLE: {
    code: Code.Unavailable,
    message: {
      en: "the API service is unreachable and the request was not processed; retry in a moment",
      ja: "API サービスに接続できず、リクエストは処理されていません。しばらくしてから再試行してください",
    },
    log: { gateway: "REQ_012" },
    notProcessed: true,
  },
  UPSTREAM_CONNECTION_LOST: {
    code: Code.Unavailable,
    message: {
      en: "the connection to the API service was lost before it answered; the request may or may not have been processed",
      ja: "API サービスが応答する前に接続が切れました。リクエストが処理されたかどうかは不明です",
    },
    log: { gateway: "REQ_012" },
  },
  UPSTREAM_UNAVAILABLE: {
    code: Code.Unavailable,
    message: {
      en: "the API service is unavailable (HTTP {httpStatus}); retry in a moment",
      ja: "API サービスが利用できません（HTTP {httpStatus}）。しばらくしてから再試行してください",
    },
    log: { gateway: "REQ_012" },
  },
  UPSTREAM_DEADLINE_EXCEEDED: {
    code: Code.DeadlineExceeded,
    message: {
      en: "the API service did not answer within {timeoutMs} ms",
      ja: "API サービスが {timeoutMs} ミリ秒以内に応答しませんでした",
    },
    log: { gateway: "REQ_012" },
  },
  UPSTREAM_METHOD_NOT_FOUND: {
    code: Code.Unimplemented,
    message: {
      en: "the API service does not serve this method (HTTP {httpStatus})",
      ja: "API サービスはこのメソッドを提供していません（HTTP {httpStatus}）",
    },
    log: { gateway: "REQ_012" },
  },
  UPSTREAM_HTTP_UNAUTHENTICATED: {
    code: Code.Unauthenticated,
    message: {
      en: "a proxy in front of the API service refused the request as unauthenticated (HTTP {httpStatus})",
      ja: "API サービス前段のプロキシが未認証としてリクエストを拒否しました（HTTP {httpStatus}）",
    },
    log: { gateway: "REQ_012" },
  },
  UPSTREAM_HTTP_PERMISSION_DENIED: {
    code: Code.PermissionDenied,
    message: {
      en: "a proxy in front of the API service refused the request (HTTP {httpStatus})",
      ja: "API サービス前段のプロキシがリクエストを拒否しました（HTTP {httpStatus}）",
    },
    log: { gateway: "REQ_012" },
  },
  UPSTREAM_PROTOCOL_ERROR: {
    code: Code.Internal,
    message: {
      en: "the API service sent an answer that is not a valid RPC response; quote request id {requestId} to support",
      ja: "API サービスの応答が正しい RPC レスポンスではありません。サポートにリクエスト ID {requestId} をお伝えください",
    },
    log: { gateway: "REQ_012" },
  },
  UPSTREAM_HTTP_ERROR: {
    code: Code.Unknown,
    message: {
      en: "the API service failed with HTTP {httpStatus} and no RPC status; quote request id {requestId} to support",
      ja: "API サービスが RPC ステータスなしで HTTP {httpStatus} を返しました。サポートにリクエスト ID {requestId} をお伝えください",
    },
    log: { gateway: "REQ_012" },
  },

  // ── The gateway's protections: rejected before any upstream call, so never processed ──
  RATE_LIMITED: {
    code: Code.ResourceExhausted,
    message: {
      en: "too many {limit} calls for {subject}: at most {max} every {windowSeconds} s; retry after the delay in RetryInfo",
      ja: "{subject} の {limit} 呼び出しが多すぎます（{windowSeconds} 秒あたり最大 {max} 回）。RetryInfo の時間が過ぎてから再試行してください",
    },
    quotaFailure: { subject: "{subject}" },
    retryDelayMs: "per call",
    log: { gateway: "REQ_002" },
    notProcessed: true,
  },
  OVERLOADED: {
    code: Code.Unavailable,
    message: {
      en: "the gateway is at its limit of {maxInFlight} calls in flight and did not process this one; retry in a moment",
      ja: "ゲートウェイは同時処理数の上限（{maxInFlight}）に達しており、このリクエストは処理されていません。しばらくしてから再試行してください",
    },
    retryDelayMs: 1000,
    log: { gateway: "REQ_002" },
    notProcessed: true,
  },
  CIRCUIT_OPEN: {
    code: Code.Unavailable,
    message: {
      en: "the API service is failing, so the gateway is not calling it for now; this request was not processed; retry after the delay in RetryInfo",
      ja: "API サービスで障害が続いているため、ゲートウェイは一時的に呼び出しを止めています。このリクエストは処理されていません。RetryInfo の時間が過ぎてから再試行してください",
    },
    retryDelayMs: "per call",
    log: { gateway: "REQ_012" },
    notProcessed: true,
    // The one breaker gave way to outlier detection per endpoint: NO_HEALTHY_UPSTREAM.
    retired: true,
  },
  NO_HEALTHY_UPSTREAM: {
    code: Code.Unavailable,
    message: {
      en: "none of the {endpoints} API servers can take the request now, so it was not processed; retry after the delay in RetryInfo",
      ja: "{endpoints} 台の API サーバーのどれも今はリクエストを受けられないため、処理していません。RetryInfo の時間が過ぎてから再試行してください",
    },
    retryDelayMs: "per call",
    log: { gateway: "REQ_012" },
    notProcessed: true,
  },

  // ── Streams ──
  STREAM_DRAINED: {
    code: Code.Unavailable,
    message: {
      en: "the server is restarting and ended this stream; watch again after the delay in RetryInfo (the new snapshot replaces what you received)",
      ja: "サーバーの再起動のためストリームを終了しました。RetryInfo の時間が過ぎてから再度監視してください（新しいスナップショットがそれまでの内容を置き換えます）",
    },
    retryDelayMs: 250,
    // Every stream of a restarting server ends so: expected, not a failure.
    logLevel: "info",
    log: { api: "REQ_003", gateway: "REQ_012" },
  },
  STREAM_DURATION_REACHED: {
    code: Code.Unavailable,
    message: {
      en: "this stream reached its longest duration of {maxMs} ms and was ended; watch again (the new snapshot replaces what you received)",
      ja: "ストリームが最長時間（{maxMs} ミリ秒）に達したため終了しました。再度監視してください（新しいスナップショットがそれまでの内容を置き換えます）",
    },
    retryDelayMs: 0,
    logLevel: "info",
    log: { gateway: "REQ_012" },
  },
  TOO_MANY_STREAMS: {
    code: Code.ResourceExhausted,
    message: {
      en: "{limit} streams are open already ({scope}); close one, or retry after the delay in RetryInfo",
      ja: "すでに {limit} 本のストリームが開いています（{scope}）。どれかを閉じるか、RetryInfo の時間が過ぎてから再試行してください",
    },
    quotaFailure: { subject: "{subject}" },
    retryDelayMs: 1000,
    log: { gateway: "REQ_002" },
    notProcessed: true,
  },

  // ── The call itself ──
  CANCELED: {
    code: Code.Canceled,
    message: { en: "the caller canceled the request", ja: "呼び出し元がリクエストをキャンセルしました" },
    log: { api: "REQ_003", gateway: "REQ_012" },
  },
  DEADLINE_EXCEEDED: {
    code: Code.DeadlineExceeded,
    message: {
      en: "the request did not finish within its deadline; retry with a longer deadline",
      ja: "リクエストが期限内に完了しませんでした。期限を延ばして再試行してください",
    },
    log: { api: "REQ_003", gateway: "REQ_012" },
  },

  HEALTH_SERVICE_UNKNOWN: {
    code: Code.NotFound,
    message: {
      en: "no health status for service {service}; ask for the empty name or a served service",
      ja: "サービス {service} のヘルス状態はありません。空の名前か提供中のサービス名を指定してください",
    },
    resourceInfo: { type: "grpc.health.v1.Service", name: "{service}" },
    log: { api: "REQ_003" },
  },

  // ── Fault injection (off unless FAULT_INJECTION=true; refused in production) ──
  // Its code is the one the caller asked for in x-bazbii-fault-abort.
  FAULT_INJECTED: {
    code: Code.Unknown,
    message: {
      en: "injected fault {code}: requested with x-bazbii-fault-abort; 100% deliberate, nothing is broken",
      ja: "注入された障害 {code}: x-bazbii-fault-abort で要求されました。意図的なもので、故障ではありません",
    },
    log: { api: "REQ_003", gateway: "REQ_002" },
  },

  FAULT_HEADER_INVALID: {
    code: Code.InvalidArgument,
    message: {
      en: "header {header} is not valid: {problem}",
      ja: "ヘッダー {header} が不正です: {problem}",
    },
    badRequest: { field: "{header}" },
    log: { api: "REQ_003", gateway: "REQ_002" },
  },

  // ── Raised by the protocol layer itself (connect-es), before our handlers run ──
  // Its code is the protocol layer's (undecodable → invalid_argument, too large →
  // resource_exhausted, unknown compression → unimplemented); its status message
  // is the protocol layer's description. Always the caller's doing.
  PROTOCOL_ERROR: {
    code: Code.InvalidArgument,
    statusMessage: "{detail}",
    message: {
      en: "the request does not follow the protocol's rules: {detail}",
      ja: "リクエストをプロトコルの規則どおりに処理できませんでした: {detail}",
    },
    badRequest: { field: "{field}" },
    log: { api: "REQ_003", gateway: "REQ_002" },
    logLevel: "warn",
  },
  METHOD_NOT_FOUND: {
    code: Code.Unimplemented,
    message: {
      en: "there is no method {path}; check the service and method names against the schema",
      ja: "メソッド {path} はありません。サービス名とメソッド名をスキーマと照らし合わせてください",
    },
    log: { gateway: "REQ_002" },
    logLevel: "warn",
  },
  REST_ROUTE_NOT_FOUND: {
    code: Code.NotFound,
    message: {
      en: "there is no REST route {verb} {path}; the routes are listed at /openapi.json",
      ja: "REST のルート {verb} {path} はありません。ルートの一覧は /openapi.json にあります",
    },
    // The resource not found is the route itself (AIP-193: NOT_FOUND names what it looked for).
    resourceInfo: { type: "REST route", name: "{verb} {path}" },
    log: { gateway: "REQ_002" },
    logLevel: "warn",
  },

  // ── Anything not foreseen ──
  INTERNAL: {
    code: Code.Internal,
    message: {
      en: "the server could not process the request; quote request id {requestId} to support",
      ja: "サーバーでリクエストを処理できませんでした。サポートにリクエスト ID {requestId} をお伝えください",
    },
    log: { api: "REQ_003", gateway: "REQ_002" },
  },
});

export type PublicReason = keyof typeof errorCatalog;
