import type { ActorId } from "../../domain/actor-id.js";
import type { CellCount, HeatmapReader } from "../../domain/feed/heatmap-reader.js";
import { type H3Cell, type H3Resolution, resolutionOf } from "../../domain/h3-cell.js";
import type { Post, PostId } from "../../domain/post/post.js";
import type { NewPost, PostRepository } from "../../domain/post/post-repository.js";
import type { PostText } from "../../domain/post/post-text.js";
import type { SqlClient } from "./sql-client.js";
import { storageFailure } from "./storage-failure.js";

interface PostRow {
  id: string;
  actor_id: string;
  h3_index: string;
  text: string;
  create_time: Date;
  delete_time: Date | null;
}

const POST_COLUMNS = "id, actor_id, h3_index, text, create_time, delete_time";

function toPost(row: PostRow): Post {
  return {
    id: row.id as PostId,
    actorId: row.actor_id as ActorId,
    h3Index: row.h3_index as H3Cell,
    text: row.text as PostText,
    createTime: row.create_time,
    deleteTime: row.delete_time ?? undefined,
  };
}

/** Runs a storage call, translating driver failures into the port's sentinels. */
async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw storageFailure(err);
  }
}

/** Posts and heatmap counts in PostgreSQL (embedded PGlite or a server): the same SQL for both. */
export function createSqlPostStore(db: SqlClient): PostRepository & HeatmapReader {
  return {
    insertOnce: (post: NewPost) =>
      guarded(async () => {
        const inserted = await db.query<PostRow>(
          `INSERT INTO posts (id, actor_id, h3_index, text, request_id, create_time, ancestors)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (actor_id, request_id) DO NOTHING
           RETURNING ${POST_COLUMNS}`,
          [
            post.id,
            post.actorId,
            post.h3Index,
            post.text,
            post.idempotencyKey ?? null,
            post.createTime,
            post.ancestors,
          ],
        );
        const row = inserted.rows[0];
        if (row !== undefined) return toPost(row);
        // The key was taken, possibly by a concurrent call that has committed by
        // now (ON CONFLICT waited for it). A new statement sees its row.
        const earlier = await db.query<PostRow>(
          `SELECT ${POST_COLUMNS} FROM posts WHERE actor_id = $1 AND request_id = $2`,
          [post.actorId, post.idempotencyKey],
        );
        const existing = earlier.rows[0];
        if (existing === undefined) throw new Error("idempotency key conflict without a stored post");
        return toPost(existing);
      }),

    findById: (id: PostId) =>
      guarded(async () => {
        const { rows } = await db.query<PostRow>(`SELECT ${POST_COLUMNS} FROM posts WHERE id = $1`, [id]);
        return rows[0] === undefined ? undefined : toPost(rows[0]);
      }),

    markDeleted: (id: PostId, at: Date) =>
      guarded(async () => {
        const { rows } = await db.query(
          "UPDATE posts SET delete_time = $2 WHERE id = $1 AND delete_time IS NULL RETURNING id",
          [id, at],
        );
        return rows.length === 1;
      }),

    countPerCell: (resolution: H3Resolution, within: H3Cell | undefined) =>
      guarded(async () => {
        // Arrays are 1-based: ancestors[r + 1] is the ancestor at resolution r,
        // NULL for posts pinned at a coarser resolution.
        const { rows } = await db.query<{ cell: string; n: number }>(
          `SELECT ancestors[$1::int + 1] AS cell, count(*)::int AS n
             FROM posts
            WHERE delete_time IS NULL
              AND ancestors[$1::int + 1] IS NOT NULL
              AND ($2::text IS NULL OR ancestors[$3::int + 1] = $2::text)
            GROUP BY 1
            ORDER BY 1`,
          [resolution, within ?? null, within === undefined ? 0 : resolutionOf(within)],
        );
        return rows.map((r): CellCount => ({ cell: r.cell as H3Cell, count: r.n }));
      }),

    countCells: (resolution: H3Resolution, cells: readonly H3Cell[]) =>
      guarded(async () => {
        const { rows } = await db.query<{ cell: string; n: number }>(
          `SELECT ancestors[$1::int + 1] AS cell, count(*)::int AS n
             FROM posts
            WHERE delete_time IS NULL
              AND ancestors[$1::int + 1] = ANY($2::text[])
            GROUP BY 1`,
          [resolution, cells],
        );
        const counts = new Map(rows.map((r) => [r.cell, r.n]));
        return [...cells].sort().map((cell): CellCount => ({ cell, count: counts.get(cell) ?? 0 }));
      }),
  };
}
