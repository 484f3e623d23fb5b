import type { ActorId } from "../actor-id.js";
import type { H3Cell } from "../h3-cell.js";
import { ErrInvalidPostId, ErrMissingPostId, ErrPostNotFound } from "./post-errors.js";
import type { PostText } from "./post-text.js";

/** Server-assigned, opaque to clients. */
export type PostId = string & { readonly __brand: "PostId" };

/** Longer ids cannot exist; refusing them keeps messages and queries bounded. */
export const POST_ID_MAX_LENGTH = 128;

export interface Post {
  readonly id: PostId;
  readonly actorId: ActorId;
  readonly h3Index: H3Cell;
  readonly text: PostText;
  readonly createTime: Date;
  /** Set once the author deleted the post; deleted posts are kept but not shown. */
  readonly deleteTime: Date | undefined;
}

export function newPostId(): PostId {
  return crypto.randomUUID() as PostId;
}

/** Control characters (NUL among them, which PostgreSQL cannot store) have no place in an id. */
const CONTROL_CHARACTER = /\p{Cc}/u;

/**
 * Ids are opaque: any non-empty text may be asked for, and an id that was
 * never issued is simply not found (one too long to have been issued is not
 * looked up at all). Text no id can be (control characters, unpaired
 * surrogates) is refused before it reaches storage.
 */
export function parsePostId(raw: string): PostId {
  if (raw.length === 0) throw ErrMissingPostId.wrap("post id is missing");
  if (CONTROL_CHARACTER.test(raw) || !raw.isWellFormed()) {
    throw ErrInvalidPostId.wrap("post id has a control character or an unpaired surrogate");
  }
  if (raw.length > POST_ID_MAX_LENGTH) throw postNotFound(raw.slice(0, POST_ID_MAX_LENGTH));
  return raw as PostId;
}

export function postNotFound(id: string): Error {
  return ErrPostNotFound.wrap(`post not found: ${id}`, { postId: id });
}
