import { t } from "./labels.js";
import { PALETTE } from "./map-view.js";

/**
 * The colour scale of the cells in view: from 1 to `max`, the largest count
 * among them, so that it changes as the view moves or counts change.
 */
export function renderLegend(legend: HTMLElement, max: number): void {
  legend.dataset.max = String(max);
  legend.replaceChildren(t(max === 0 ? "legendEmpty" : "legendLabel"));
  if (max === 0) return;
  const scale = document.createElement("span");
  scale.className = "scale";
  scale.append("1");
  for (const colour of PALETTE) {
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour;
    scale.append(swatch);
  }
  const top = document.createElement("span");
  top.className = "legend-max";
  top.textContent = String(max);
  scale.append(top);
  legend.append(" ", scale);
}
