import { cellToBoundary, latLngToCell } from "h3-js";

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
  return Math.min(PALETTE.length - 1, Math.floor(((count - 1) / (max - 1 || 1)) * PALETTE.length));
}

/**
 * A tile-free map: H3 cells drawn as SVG polygons in an equirectangular
 * projection of the viewport, over a graticule, coloured by post count.
 */
export class MapView {
  constructor(
    private readonly svg: SVGSVGElement,
    readonly viewport: Viewport,
  ) {
    svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  }

  private get spanLng(): number {
    return (this.viewport.spanLat * WIDTH) / HEIGHT;
  }

  project(lat: number, lng: number): [number, number] {
    const x = ((lng - (this.viewport.lng - this.spanLng / 2)) / this.spanLng) * WIDTH;
    const y = ((this.viewport.lat + this.viewport.spanLat / 2 - lat) / this.viewport.spanLat) * HEIGHT;
    return [x, y];
  }

  /** The cell at resolution `res` under an SVG point (or the centre). */
  cellAt(res: number, point?: { x: number; y: number }): string {
    const x = point?.x ?? WIDTH / 2;
    const y = point?.y ?? HEIGHT / 2;
    const lng = this.viewport.lng - this.spanLng / 2 + (x / WIDTH) * this.spanLng;
    const lat = this.viewport.lat + this.viewport.spanLat / 2 - (y / HEIGHT) * this.viewport.spanLat;
    return latLngToCell(Math.max(-85, Math.min(85, lat)), ((((lng + 180) % 360) + 360) % 360) - 180, res);
  }

  /** Converts a pointer event to SVG coordinates. */
  svgPoint(event: MouseEvent): { x: number; y: number } {
    const rect = this.svg.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) / rect.width) * WIDTH,
      y: ((event.clientY - rect.top) / rect.height) * HEIGHT,
    };
  }

  private polygon(cell: string): string {
    return cellToBoundary(cell)
      .map(([lat, lng]) =>
        this.project(lat, lng)
          .map((n) => n.toFixed(1))
          .join(","),
      )
      .join(" ");
  }

  render(cells: readonly CellCount[], selected: string | undefined): void {
    const title = document.createElementNS(SVG, "title");
    title.textContent = "Heatmap of posts per H3 cell";
    const children: Element[] = [title];
    const step = this.viewport.spanLat > 40 ? 30 : this.viewport.spanLat > 8 ? 5 : this.viewport.spanLat > 1 ? 1 : 0.1;
    for (
      let lat = Math.ceil((this.viewport.lat - this.viewport.spanLat) / step) * step;
      lat < this.viewport.lat + this.viewport.spanLat;
      lat += step
    ) {
      const [, y] = this.project(lat, this.viewport.lng);
      children.push(line(0, y, WIDTH, y));
    }
    for (
      let lng = Math.ceil((this.viewport.lng - this.spanLng) / step) * step;
      lng < this.viewport.lng + this.spanLng;
      lng += step
    ) {
      const [x] = this.project(this.viewport.lat, lng);
      children.push(line(x, 0, x, HEIGHT));
    }
    const max = Math.max(0, ...cells.map((c) => c.postCount));
    for (const cell of cells) {
      const p = document.createElementNS(SVG, "polygon");
      p.setAttribute("points", this.polygon(cell.h3Index));
      p.setAttribute("class", "cell");
      p.setAttribute("fill", PALETTE[bucket(cell.postCount, max)] ?? "#bd0026");
      p.dataset.cell = cell.h3Index;
      p.dataset.count = String(cell.postCount);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${cell.h3Index}: ${cell.postCount} post${cell.postCount === 1 ? "" : "s"}`;
      p.append(title);
      children.push(p);
    }
    if (selected !== undefined) {
      const s = document.createElementNS(SVG, "polygon");
      s.setAttribute("points", this.polygon(selected));
      s.setAttribute("class", "selected");
      children.push(s);
    }
    this.svg.replaceChildren(...children);
  }
}

function line(x1: number, y1: number, x2: number, y2: number): Element {
  const l = document.createElementNS(SVG, "line");
  for (const [k, v] of Object.entries({ x1, y1, x2, y2 })) l.setAttribute(k, v.toFixed(1));
  l.setAttribute("class", "graticule");
  return l;
}
