import { DomainError } from "../errors.js";

export const ErrInvalidH3Resolution = DomainError.sentinel("H3_RES_OUT_OF_RANGE", "h3_res out of range");
export const ErrInvalidAreaCell = DomainError.sentinel("INVALID_AREA_CELL", "invalid H3 cell for the area");
