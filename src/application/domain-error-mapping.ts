import type { DomainReason } from "../domain/domain-errors.js";
import { errorCatalog as c } from "../shared/errors/catalog.js";
import type { ErrorSpec } from "../shared/errors/error-spec.js";

/**
 * THE mapping from domain errors to public errors (code, messages, details).
 * Keyed by DomainReason: a domain sentinel added without an entry here does
 * not compile. A domain error's context values become the error's parameters.
 */
export const domainErrorMapping: { readonly [R in DomainReason]: ErrorSpec } = {
  INVALID_ACTOR_ID: c.INVALID_ACTOR_ID,
  H3_RES_OUT_OF_RANGE: c.H3_RES_OUT_OF_RANGE,
  INVALID_AREA_CELL: c.INVALID_AREA_CELL,
  INVALID_H3_INDEX: c.INVALID_H3_INDEX,
  TEXT_EMPTY: c.TEXT_EMPTY,
  TEXT_TOO_LONG: c.TEXT_TOO_LONG,
  TEXT_HAS_CONTROL_CHARACTERS: c.TEXT_HAS_CONTROL_CHARACTERS,
  INVALID_REQUEST_ID: c.INVALID_REQUEST_ID,
  REQUEST_ID_REUSED: c.REQUEST_ID_REUSED,
  POST_ID_MISSING: c.POST_ID_MISSING,
  POST_NOT_FOUND: c.POST_NOT_FOUND,
  NOT_POST_AUTHOR: c.NOT_POST_AUTHOR,
  POST_ALREADY_DELETED: c.POST_ALREADY_DELETED,
  STORAGE_UNAVAILABLE: c.STORAGE_UNAVAILABLE,
  STORAGE_CONFLICT: c.STORAGE_CONFLICT,
};
