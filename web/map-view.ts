import { type GeoPath, type GeoPermissibleObjects, geoEquirectangular, geoGraticule, geoPath } from "d3-geo";
import type { Polygon } from "geojson";
import { cellToBoundary, latLngToCell } from "h3-js";
import { postCount, t } from "./labels.js";
import { worldMap } from "./world.js";

/** What part of the world the map shows: a centre and a height in degrees of latitude. */
export interface Viewport {
  lat: number;
  lng: number;
  spanLat: number;
}

export interface CellCount {
  readonly h3Index: string;
  readonly postCount: number;
}

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 800;
const HEIGHT = 500;

/** Colours from few to many posts (ColorBrewer YlOrRd), each readable against the map's background. */
export const PALETTE = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];

function bucket(count: number, max: number): number {
  if (max <= 1) return PALETTE.length - 1;
  return Math.min(PALETTE.length - 1, Math.floor(((count - 1) / (max - 1)) * PALETTE.length));
}

/** A cell's outline as GeoJSON, wound clockwise as d3-geo wants (H3 gives it counter-clockwise). */
function cellPolygon(cell: string): Polygon {
  return { type: "Polygon", coordinates: [cellToBoundary(cell, true).reverse()] };
}

function svgElement(name: string, attributes: Record<string, string>): SVGElement {
  const el = document.createElementNS(SVG, name) as SVGElement;
  for (const [k, v] of Object.entries(attributes)) el.setAttribute(k, v);
  return el;
}

/**
 * A tile-free map: the world's land and borders, a graticule, and over them
 * the H3 cells coloured by post count, all in one d3-geo equirectangular
 * projection of the viewport (clipped to it, so cells out of view draw nothing
 * and wrap across the antimeridian). The base layer is drawn again only when
 * the viewport moves; the cells whenever their counts change.
 */
export class MapView {
  private readonly base = svgElement("g", { class: "base" });
  private readonly cellLayer = svgElement("g", { class: "cells" });
  private baseDrawnFor = "";

  constructor(
    private readonly svg: SVGSVGElement,
    readonly viewport: Viewport,
  ) {
    svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
    const title = svgElement("title", {});
    title.textContent = t("mapTitle");
    svg.replaceChildren(title, this.base, this.cellLayer);
  }

  /** The viewport's projection: square pixels, `spanLat` degrees from top to bottom. */
  private projection() {
    const pixelsPerDegree = HEIGHT / this.viewport.spanLat;
    return geoEquirectangular()
      .rotate([-this.viewport.lng, 0])
      .center([0, this.viewport.lat])
      .scale((pixelsPerDegree * 180) / Math.PI)
      .translate([WIDTH / 2, HEIGHT / 2])
      .clipExtent([
        [0, 0],
        [WIDTH, HEIGHT],
      ]);
  }

  private path(): GeoPath<unknown, GeoPermissibleObjects> {
    return geoPath(this.projection()).digits(1);
  }

  /** The cell at resolution `res` under an SVG point (or the centre). */
  cellAt(res: number, point?: { x: number; y: number }): string {
    const [lng, lat] = this.projection().invert?.([point?.x ?? WIDTH / 2, point?.y ?? HEIGHT / 2]) ?? [0, 0];
    return latLngToCell(Math.max(-85, Math.min(85, lat)), lng, res);
  }

  /** Converts a pointer event to SVG coordinates. */
  svgPoint(event: MouseEvent): { x: number; y: number } {
    const rect = this.svg.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) / rect.width) * WIDTH,
      y: ((event.clientY - rect.top) / rect.height) * HEIGHT,
    };
  }

  /**
   * Draws the cells in view over the base map and returns the largest count
   * among them, which the colours (and so the legend) scale to.
   */
  render(cells: Iterable<CellCount>, selected: string | undefined): number {
    const path = this.path();
    this.drawBase(path);
    const inView: [CellCount, string][] = [];
    let max = 0;
    for (const cell of cells) {
      const d = path(cellPolygon(cell.h3Index)); // null: clipped away, not in view
      if (!d) continue;
      inView.push([cell, d]);
      max = Math.max(max, cell.postCount);
    }
    const children: SVGElement[] = inView.map(([cell, d]) => {
      const p = svgElement("path", {
        d,
        class: "cell",
        fill: PALETTE[bucket(cell.postCount, max)] ?? "#bd0026",
        "data-cell": cell.h3Index,
        "data-count": String(cell.postCount),
      });
      const title = svgElement("title", {});
      title.textContent = t("cellPosts", { cell: cell.h3Index, posts: postCount(cell.postCount) });
      p.append(title);
      return p;
    });
    const outline = selected === undefined ? null : path(cellPolygon(selected));
    if (outline) children.push(svgElement("path", { d: outline, class: "selected" }));
    this.cellLayer.replaceChildren(...children);
    return max;
  }

  private drawBase(path: GeoPath<unknown, GeoPermissibleObjects>): void {
    const { lat, lng, spanLat } = this.viewport;
    const key = `${lat},${lng},${spanLat}`;
    if (key === this.baseDrawnFor) return;
    this.baseDrawnFor = key;
    const { land, borders } = worldMap();
    // Graticule lines at round numbers of degrees, only around the view (a world of 0.1° lines is too many).
    const step = spanLat > 40 ? 30 : spanLat > 8 ? 5 : spanLat > 1 ? 1 : 0.1;
    const spanLng = (spanLat * WIDTH) / HEIGHT;
    const graticule = geoGraticule()
      .extent([
        [Math.floor((lng - spanLng) / step) * step, Math.max(-90, Math.floor((lat - spanLat) / step) * step)],
        [lng + spanLng, Math.min(90, lat + spanLat)],
      ])
      .step([step, step])();
    this.base.replaceChildren(
      svgElement("path", { class: "land", d: path(land) ?? "" }),
      svgElement("path", { class: "borders", d: path(borders) ?? "" }),
      svgElement("path", { class: "graticule", d: path(graticule) ?? "" }),
    );
  }
}
