/**
 * The theoretical receptive field of a cell of the backbone's 8×8 feature map: which pixels of the
 * 32×32 input can reach it through the stem and layer1. Each layer widens the field by
 * (kernel − 1) × the jump (input pixels between neighbouring cells) before it, and padding shifts
 * where the field of the first cell is centred. A field larger than the image does not mean every
 * cell sees all of it: a field is centred on its cell, so a cell near the border sees the part of
 * it that lies inside the image.
 */
import { IMAGE_SIZE } from '../config';

export interface ConvLayer {
  layer: string;
  kernel: number;
  stride: number;
  padding: number;
}

/** ResNet-18 up to layer1 (lib/model/resnet): conv1 7×7/2, the max-pool 3×3/2, layer1's four 3×3 convolutions. */
const BACKBONE_LAYERS: readonly ConvLayer[] = [
  { layer: 'conv1', kernel: 7, stride: 2, padding: 3 },
  { layer: 'max-pool', kernel: 3, stride: 2, padding: 1 },
  ...[1, 2, 3, 4].map((i) => ({ layer: `layer1 conv ${i}`, kernel: 3, stride: 1, padding: 1 })),
];

export interface ReceptiveField {
  /** Layer by layer: the jump before it, how much it widens the field, the field after it, the map size after it. */
  layers: (ConvLayer & { jumpBefore: number; widens: number; field: number; mapSize: number })[];
  /** Side of every cell's theoretical field, in input pixels. */
  size: number;
  /** Per row (or column) index of the output map: the input pixels its field covers, clipped to the image. */
  cells: { cell: number; from: number; to: number; pixels: number }[];
  imageSize: number;
}

export function receptiveField(layers: readonly ConvLayer[] = BACKBONE_LAYERS, imageSize = IMAGE_SIZE): ReceptiveField {
  let jump = 1; // input pixels between neighbouring cells
  let size = 1;
  let centre = 0; // input coordinate of the first cell's centre
  let mapSize = imageSize;
  const rows = layers.map((l) => {
    const jumpBefore = jump;
    const widens = (l.kernel - 1) * jump;
    size += widens;
    centre += ((l.kernel - 1) / 2 - l.padding) * jump;
    jump *= l.stride;
    mapSize = Math.floor((mapSize + 2 * l.padding - l.kernel) / l.stride) + 1;
    return { ...l, jumpBefore, widens, field: size, mapSize };
  });
  const half = (size - 1) / 2;
  const cells = Array.from({ length: mapSize }, (_, cell) => {
    const from = Math.max(0, centre + cell * jump - half);
    const to = Math.min(imageSize - 1, centre + cell * jump + half);
    return { cell, from, to, pixels: to - from + 1 };
  });
  return { layers: rows, size, cells, imageSize };
}
