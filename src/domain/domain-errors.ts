import { ErrInvalidActorId } from "./actor-id.js";
import { ErrInvalidAreaCell, ErrInvalidH3Resolution } from "./feed/heatmap-errors.js";
import * as postErrors from "./post/post-errors.js";
import { ErrStorageConflict, ErrStorageUnavailable } from "./storage-errors.js";

/**
 * Every sentinel the domain can throw. The application's status mapping is
 * keyed by `DomainReason`, so a sentinel added here without a mapping there
 * does not compile.
 */
export const domainSentinels = [
  ErrInvalidActorId,
  ErrInvalidH3Resolution,
  ErrInvalidAreaCell,
  ...Object.values(postErrors),
  ErrStorageUnavailable,
  ErrStorageConflict,
] as const;

export type DomainReason = (typeof domainSentinels)[number]["reason"];
