import { ansiPaint, noColor, type Paint } from './render.js';

/** Colours only on a terminal that has them (NO_COLOR and FORCE_COLOR are Node's). */
export function paintFor(stream: NodeJS.WriteStream): Paint {
  return stream.isTTY && stream.hasColors() ? ansiPaint() : noColor;
}
