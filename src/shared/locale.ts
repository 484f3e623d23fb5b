import Negotiator from "negotiator";

/** Languages every public message exists in. */
export const locales = ["en", "ja"] as const;
export type Locale = (typeof locales)[number];
export const defaultLocale: Locale = "en";

const available = [...locales];

/** Picks the caller's language from an Accept-Language header; English when none fits. */
export function negotiateLocale(acceptLanguage: string | null | undefined): Locale {
  if (!acceptLanguage) return defaultLocale;
  const best = new Negotiator({ headers: { "accept-language": acceptLanguage } }).language(available);
  return (best as Locale | undefined) ?? defaultLocale;
}
