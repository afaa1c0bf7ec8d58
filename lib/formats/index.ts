/**
 * lib/formats: File formats, nothing of ours below: safetensors, PyTorch .pth, tar, protobuf, zip, TensorBoard
 * event files, atomic writes.
 */
export * from './atomic-file';
export * from './protobuf';
export * from './pth';
export * from './safetensors';
export * from './tar';
export * from './tfevents';
export * from './zip';
