/**
 * The data a run trains and evaluates on: CIFAR-10's files (or splits already loaded, e.g. a
 * notebook's), limited by limitTrain / limitTest, with the fixed validation split held out of
 * the training images when the config asks for one.
 */
import { loadCifar10, splitValidation, type Cifar10Split } from '../data/index';
import { CHANNELS, IMAGE_SIZE } from '../config';
import type { TrainConfig } from './train-config';

/** The splits a run trains and evaluates on. */
export interface TrainData {
  train: Cifar10Split;
  test: Cifar10Split;
  /** The fixed validation split held out of train (config.val > 0). */
  val?: Cifar10Split;
}

/** The run's data: the files (or `given`, e.g. a notebook's), limited by limitTrain / limitTest, with its validation split. */
export function loadTrainData(config: TrainConfig, given?: { train: Cifar10Split; test: Cifar10Split }): TrainData {
  const limit = (n: number) => (n > 0 ? n : undefined);
  let train = given?.train ?? loadCifar10('train', { limit: limit(config.limitTrain) });
  let test = given?.test ?? loadCifar10('test', { limit: limit(config.limitTest) });
  if (given && config.limitTrain > 0 && train.count > config.limitTrain) train = slice(train, config.limitTrain);
  if (given && config.limitTest > 0 && test.count > config.limitTest) test = slice(test, config.limitTest);
  if (config.val > 0) {
    const parts = splitValidation(train, config.val); // the fixed split, the same for every run
    return { train: parts.train, val: parts.val, test };
  }
  return { train, test };
}

function slice(split: Cifar10Split, n: number): Cifar10Split {
  return {
    images: split.images.subarray(0, n * IMAGE_SIZE * IMAGE_SIZE * CHANNELS),
    labels: split.labels.subarray(0, n),
    count: n,
  };
}
