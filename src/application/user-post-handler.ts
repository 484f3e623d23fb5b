import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Post } from "../domain/post/post.js";
import type { PostService } from "../domain/post/post-service.js";
import type { PostSchema, UserPostService } from "../gen/bazbii/post/v1/user_post_service_pb.js";
import { requireActor } from "./actor.js";

function toProto(post: Post): MessageInitShape<typeof PostSchema> {
  return {
    id: post.id,
    actorId: post.actorId,
    h3Index: post.h3Index,
    text: post.text,
    createTime: timestampFromDate(post.createTime),
  };
}

/** bazbii.post.v1.UserPostService on the domain's PostService. Errors go to the boundary as thrown. */
export function createUserPostHandler(posts: PostService): ServiceImpl<typeof UserPostService> {
  return {
    async create(req, ctx) {
      const actorId = requireActor(ctx);
      const id = await posts.create({ actorId, h3Index: req.h3Index, text: req.text, requestId: req.requestId });
      return { id };
    },
    async get(req) {
      return { post: toProto(await posts.get(req.id)) };
    },
    async delete(req, ctx) {
      await posts.delete(requireActor(ctx), req.id);
      return {};
    },
  };
}
