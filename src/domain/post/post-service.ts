import { type ActorId, parseActorId } from "../actor-id.js";
import { checkAll, findDomainError } from "../errors.js";
import type { EventPublisher } from "../event-publisher.js";
import { ancestorsOf, parseH3Cell } from "../h3-cell.js";
import { parseIdempotencyKey } from "./idempotency-key.js";
import { newPostId, type Post, type PostId, parsePostId, postNotFound } from "./post.js";
import { ErrInvalidH3Index, ErrNotPostAuthor, ErrRequestIdReused } from "./post-errors.js";
import { creationFailed, postCreated, postDeleted } from "./post-events.js";
import type { PostRepository } from "./post-repository.js";
import { parsePostText } from "./post-text.js";

export interface CreatePostInput {
  readonly actorId: string;
  readonly h3Index: string;
  readonly text: string;
  /** Idempotency key; empty for none. */
  readonly requestId: string;
}

export interface PostService {
  create(input: CreatePostInput): Promise<PostId>;
  get(id: string): Promise<Post>;
  delete(actorId: string, id: string): Promise<void>;
}

export interface PostServiceDeps {
  readonly posts: PostRepository;
  readonly events: EventPublisher;
  readonly now?: () => Date;
}

export function createPostService({ posts, events, now = () => new Date() }: PostServiceDeps): PostService {
  async function create(input: CreatePostInput): Promise<PostId> {
    const actorId = parseActorId(input.actorId);
    const [h3Index, text, idempotencyKey] = checkAll([
      () => parseH3Cell(input.h3Index, ErrInvalidH3Index),
      () => parsePostText(input.text),
      () => parseIdempotencyKey(input.requestId),
    ]);
    const stored = await posts.insertOnce({
      id: newPostId(),
      actorId,
      h3Index,
      text,
      createTime: now(),
      ancestors: ancestorsOf(h3Index),
      idempotencyKey,
    });
    // Same key, same actor, different post: the key was reused by mistake, and
    // answering with the earlier id would hide the new post's loss.
    if (stored.h3Index !== h3Index || stored.text !== text) {
      throw ErrRequestIdReused.wrap("request_id was already used for a different post", {
        requestId: input.requestId,
        postId: stored.id,
      });
    }
    events.publish(postCreated(stored.id, stored.h3Index));
    return stored.id;
  }

  async function get(rawId: string): Promise<Post> {
    const id = parsePostId(rawId);
    const post = await posts.findById(id);
    if (post === undefined || post.deleteTime !== undefined) throw postNotFound(id);
    return post;
  }

  /**
   * Deletes a post of the actor's. IDEMPOTENT, as the schema declares it: the
   * author deleting a post that is already deleted (a retry whose first answer
   * was lost, or a concurrent delete) succeeds, so a retry never shows an error.
   */
  async function remove(rawActorId: string, rawId: string): Promise<void> {
    const actorId: ActorId = parseActorId(rawActorId);
    const id = parsePostId(rawId);
    const post = await posts.findById(id);
    if (post === undefined) throw postNotFound(id);
    if (post.actorId !== actorId) {
      throw ErrNotPostAuthor.wrap(`actor ${actorId} is not the author of post ${id}`, { postId: id });
    }
    if (post.deleteTime === undefined && (await posts.markDeleted(id, now()))) {
      events.publish(postDeleted(id, post.h3Index));
    }
  }

  return {
    async create(input) {
      try {
        return await create(input);
      } catch (err) {
        // Seed: every failed creation is published as post.CreationFailedEvent.
        events.publish(creationFailed(findDomainError(err)?.reason ?? "unknown", input.actorId));
        throw err;
      }
    },
    get,
    delete: remove,
  };
}
