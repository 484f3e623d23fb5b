import type { H3Cell } from "../h3-cell.js";
import type { IdempotencyKey } from "./idempotency-key.js";
import type { Post, PostId } from "./post.js";

export interface NewPost extends Omit<Post, "deleteTime"> {
  /** The post's cell's parent at every resolution 0..its own (see ancestorsOf). */
  readonly ancestors: readonly H3Cell[];
  readonly idempotencyKey: IdempotencyKey | undefined;
}

/**
 * Storage port for posts. Implementations throw ErrStorageUnavailable or
 * ErrStorageConflict (wrapping the driver error) for failures callers can act on.
 */
export interface PostRepository {
  /**
   * Stores the post unless the same actor already stored one under the same
   * idempotency key; concurrent identical calls store one post. Returns the
   * stored post: the new one, or the earlier one.
   */
  insertOnce(post: NewPost): Promise<Post>;
  /** Finds a post, deleted or not. */
  findById(id: PostId): Promise<Post | undefined>;
  /** Marks a post deleted; false when it already was (a concurrent delete came first). */
  markDeleted(id: PostId, at: Date): Promise<boolean>;
}
