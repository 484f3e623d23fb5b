import type { DomainReason } from "../domain/domain-errors.js";
import { errorCatalog as c } from "../shared/errors/catalog.js";
import type { ErrorSpec } from "../shared/errors/error-spec.js";

/**
 * THE mapping from domain errors to public errors (code, messages, details).
 * Keyed by DomainReason: a domain sentinel added without an entry here does
 * not compile. A domain error's context values become the error's parameters;
 * the other failures it carries (checkAll) become more BadRequest violations.
 */
export const domainErrorMapping: { readonly [R in DomainReason]: ErrorSpec } = {
  INVALID_ACTOR_ID: c.INVALID_ACTOR_ID,
  H3_RES_OUT_OF_RANGE: c.H3_RES_OUT_OF_RANGE,
  INVALID_AREA_CELL: c.INVALID_AREA_CELL,
  INVALID_H3_INDEX: c.INVALID_H3_INDEX,
  TEXT_EMPTY: c.TEXT_EMPTY,
  TEXT_TOO_LONG: c.TEXT_TOO_LONG,
  TEXT_HAS_CONTROL_CHARACTERS: c.TEXT_HAS_CONTROL_CHARACTERS,
  TEXT_NOT_UNICODE: c.TEXT_NOT_UNICODE,
  INVALID_REQUEST_ID: c.INVALID_REQUEST_ID,
  REQUEST_ID_REUSED: c.REQUEST_ID_REUSED,
  POST_ID_MISSING: c.POST_ID_MISSING,
  POST_ID_INVALID: c.POST_ID_INVALID,
  POST_NOT_FOUND: c.POST_NOT_FOUND,
  NOT_POST_AUTHOR: c.NOT_POST_AUTHOR,
  STORAGE_UNAVAILABLE: c.STORAGE_UNAVAILABLE,
  STORAGE_CONFLICT: c.STORAGE_CONFLICT,
};
