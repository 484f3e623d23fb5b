import { ErrEmptyText, ErrTextHasControlCharacters, ErrTextNotUnicode, ErrTextTooLong } from "./post-errors.js";

export type PostText = string & { readonly __brand: "PostText" };

/** Counted in Unicode code points, so "あ" and "😀" are one character each. */
export const POST_TEXT_MAX_CHARACTERS = 280;

/**
 * Control characters (Unicode category Cc) other than tab and line breaks:
 * they cannot be shown, and NUL cannot even be stored in PostgreSQL text.
 */
const CONTROL_CHARACTERS = /[^\P{Cc}\t\n\r]/u;

export function parsePostText(raw: string): PostText {
  if (raw.trim().length === 0) throw ErrEmptyText.wrap("text is empty");
  // A lone surrogate cannot be stored as UTF-8: it would come back as U+FFFD,
  // a different text (and a retried Create would then look like a reused key).
  if (!raw.isWellFormed()) throw ErrTextNotUnicode.wrap("text has an unpaired surrogate");
  let length = 0;
  for (const _ of raw) length++;
  if (length > POST_TEXT_MAX_CHARACTERS) {
    throw ErrTextTooLong.wrap(`text has ${length} characters, more than ${POST_TEXT_MAX_CHARACTERS}`, {
      length: String(length),
      maxLength: String(POST_TEXT_MAX_CHARACTERS),
    });
  }
  if (CONTROL_CHARACTERS.test(raw)) throw ErrTextHasControlCharacters.wrap("text contains control characters");
  return raw as PostText;
}
