import { DomainError } from "../errors.js";

/** The sentinel errors of posts. The application maps each reason to a status code. */
export const ErrInvalidH3Index = DomainError.sentinel("INVALID_H3_INDEX", "invalid H3 index");
export const ErrEmptyText = DomainError.sentinel("TEXT_EMPTY", "text is empty");
export const ErrTextTooLong = DomainError.sentinel("TEXT_TOO_LONG", "text is too long");
export const ErrTextHasControlCharacters = DomainError.sentinel(
  "TEXT_HAS_CONTROL_CHARACTERS",
  "text contains control characters",
);
export const ErrTextNotUnicode = DomainError.sentinel("TEXT_NOT_UNICODE", "text is not valid Unicode");
export const ErrInvalidRequestId = DomainError.sentinel("INVALID_REQUEST_ID", "invalid request_id");
export const ErrRequestIdReused = DomainError.sentinel(
  "REQUEST_ID_REUSED",
  "request_id was already used for a different post",
);
export const ErrMissingPostId = DomainError.sentinel("POST_ID_MISSING", "post id is missing");
export const ErrInvalidPostId = DomainError.sentinel("POST_ID_INVALID", "post id is not valid text");
export const ErrPostNotFound = DomainError.sentinel("POST_NOT_FOUND", "post not found");
export const ErrNotPostAuthor = DomainError.sentinel("NOT_POST_AUTHOR", "not the author of the post");
