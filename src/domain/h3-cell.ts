import { cellToParent, getResolution, isValidCell } from "h3-js";
import type { DomainError } from "./errors.js";

/** A valid H3 cell index in its canonical form: 15 lowercase hex digits. */
export type H3Cell = string & { readonly __brand: "H3Cell" };

/** An H3 resolution: 0 (about 4.3 million km² per cell) to 15 (about 1 m²). */
export type H3Resolution = number & { readonly __brand: "H3Resolution" };

export const MIN_H3_RESOLUTION = 0;
export const MAX_H3_RESOLUTION = 15;

/**
 * Parses an H3 cell string, throwing `invalid` wrapped with the offending value.
 * Which sentinel is thrown depends on the field the value came from.
 */
export function parseH3Cell(raw: string, invalid: DomainError): H3Cell {
  // isValidCell parses any hex case; the canonical form is lowercase.
  const cell = raw.toLowerCase();
  if (cell.length !== 15 || !isValidCell(cell)) {
    throw invalid.wrap(`invalid H3 index: ${JSON.stringify(raw.slice(0, 32))}`, { value: raw.slice(0, 32) });
  }
  return cell as H3Cell;
}

export function isH3Resolution(n: number): n is H3Resolution {
  return Number.isInteger(n) && n >= MIN_H3_RESOLUTION && n <= MAX_H3_RESOLUTION;
}

export function resolutionOf(cell: H3Cell): H3Resolution {
  return getResolution(cell) as H3Resolution;
}

/**
 * The cell and its ancestors: element r is the cell's parent at resolution r,
 * for r = 0 .. the cell's own resolution. Stored with each post so a heatmap at
 * any resolution is one indexed GROUP BY, equal by construction to h3-js cellToParent.
 */
export function ancestorsOf(cell: H3Cell): H3Cell[] {
  const res = getResolution(cell);
  const out: H3Cell[] = [];
  for (let r = 0; r < res; r++) out.push(cellToParent(cell, r) as H3Cell);
  out.push(cell);
  return out;
}
